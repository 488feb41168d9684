"""Explanation pages from training (validation articles worth a look) and from `newsclf explain`."""

import json
from pathlib import Path

import mlflow
import pytest

from newsclf.page import MAX_BATCH_ARTICLES
from newsclf.train.cli import main
from newsclf.train.jobs.pages import (
    CONFIDENT_MISTAKE,
    LEAST_CONFIDENT,
    MOST_CONFIDENT,
    PAGES_FOLDER,
    log_explanation_pages,
    notable_articles,
)
from tests.helpers import as_articles, corpus_slice, train_into_new_store

ARTICLE = "Artillery shelled the port overnight.\nEnvoys met in Doha to discuss a ceasefire.\nBy Ana Ruiz"


def _prediction(topic: str, probability: float) -> dict:
    return {"topic": topic, "topic_probability": probability}


def test_notable_articles_are_the_confident_mistakes_then_the_most_and_least_confident():
    predictions = [
        _prediction("sports", 0.9),  # right, most confident
        _prediction("law_crime", 0.8),  # wrong, most confident mistake
        _prediction("sports", 0.2),  # right, least confident
        _prediction("sports", 0.5),  # wrong
        _prediction("sports", 0.3),  # right
        _prediction("sports", 0.6),  # right
    ]
    topics = ["sports", "sports", "sports", "arts_culture", "sports", "sports"]
    assert notable_articles(predictions, topics) == [
        (1, CONFIDENT_MISTAKE),
        (3, CONFIDENT_MISTAKE),
        (0, MOST_CONFIDENT),
        (2, LEAST_CONFIDENT),
        (4, LEAST_CONFIDENT),
    ]
    assert notable_articles([], []) == []


def test_training_logs_at_most_six_pages_naming_the_run_and_the_article(small_model, monkeypatch):
    logged = {}
    monkeypatch.setattr(mlflow, "log_text", lambda text, path: logged.__setitem__(path, text))
    validation = as_articles(corpus_slice(2))
    paths = log_explanation_pages(small_model, validation, "run123")
    assert paths == list(logged) and 3 <= len(paths) <= 6
    assert all(path.startswith(f"{PAGES_FOLDER}/") and path.endswith(".html") for path in paths)
    for page in logged.values():
        assert "runs:/run123/model" in page and "run123" in page and "Validation article " in page
    assert log_explanation_pages(small_model, validation.subset([]), "run123") == []


def test_pages_from_the_runs_evaluation_are_the_pages_from_predicting_again(small_model, monkeypatch):
    from newsclf.train.evaluation.evaluate import evaluate

    logged = []
    monkeypatch.setattr(mlflow, "log_text", lambda text, path: logged.append((path, text)))
    validation = as_articles(corpus_slice(3))
    log_explanation_pages(small_model, validation, "run123")
    predicted, logged[:] = list(logged), []
    evaluation = evaluate(small_model, validation)
    asked, predict = [], type(small_model).predict
    monkeypatch.setattr(type(small_model), "predict", lambda self, texts: asked.append(texts) or predict(self, texts))
    log_explanation_pages(small_model, validation, "run123", evaluation)
    assert logged == predicted
    assert validation.texts not in asked  # each page predicts its own article, nothing predicts them all


def test_explain_writes_one_page_for_a_file(small_model_folder, tmp_path, capsys):
    article = tmp_path / "article.txt"
    article.write_text(ARTICLE, encoding="utf-8")
    output = tmp_path / "page.html"
    assert main(["explain", "--model", str(small_model_folder), str(article), "--html", str(output)]) == 0
    page = output.read_text(encoding="utf-8")
    assert f"Why newsclf labelled {article}" in page and "removed: byline" in page
    assert "wrote the explanation of 1 article(s)" in capsys.readouterr().err


def test_explain_writes_one_linked_page_for_json_lines(small_model_folder, tmp_path):
    records = tmp_path / "items.jsonl"
    records.write_text("".join(json.dumps({"id": n, "text": ARTICLE}) + "\n" for n in range(3)), encoding="utf-8")
    output = tmp_path / "batch.html"
    assert main(["explain", "--model", str(small_model_folder), "--jsonl", str(records), "-o", str(output)]) == 0
    page = output.read_text(encoding="utf-8")
    assert "3 articles" in page and all(f'href="#article-{n}"' in page for n in (1, 2, 3))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (MAX_BATCH_ARTICLES + 1, f"one page shows at most {MAX_BATCH_ARTICLES}; split the input"),
        (0, "no articles in"),
    ],
)
def test_explain_refuses_what_one_page_cannot_show_before_loading_the_model(tmp_path, capsys, lines, message):
    records = tmp_path / "items.jsonl"
    records.write_text('{"text": "x"}\n' * lines, encoding="utf-8")
    output = tmp_path / "page.html"
    # The model does not exist: the input is refused first.
    assert main(["explain", "--model", str(tmp_path / "none"), "--jsonl", str(records), "--html", str(output)]) == 2
    assert message in capsys.readouterr().err and not output.exists()


def test_explain_refuses_an_output_folder_that_does_not_exist(tmp_path, capsys):
    article = tmp_path / "article.txt"
    article.write_text(ARTICLE, encoding="utf-8")
    assert main(["explain", str(article), "--html", str(tmp_path / "missing" / "page.html")]) == 2
    assert "does not exist; create it or choose another --output" in capsys.readouterr().err


@pytest.mark.slow
def test_a_training_run_logs_pages_that_open_from_its_artifacts(tmp_path):
    from mlflow.tracking import MlflowClient

    _, tracking_uri, result = train_into_new_store(tmp_path)
    client = MlflowClient(tracking_uri)
    pages = [artifact.path for artifact in client.list_artifacts(result.run_id, PAGES_FOLDER)]
    assert 3 <= len(pages) <= 6 and all(path.endswith(".html") for path in pages)
    (tmp_path / "download").mkdir()
    page = client.download_artifacts(result.run_id, pages[0], str(tmp_path / "download"))
    text = Path(page).read_text(encoding="utf-8")
    assert f"runs:/{result.run_id}/model" in text and "Validation article" in text

    # The command line names the registered version an alias points at, and the run behind it.
    article = tmp_path / "article.txt"
    article.write_text(ARTICLE, encoding="utf-8")
    output = tmp_path / "page.html"
    command = ["explain", "--model", "models:/test-model@champion", "--tracking-uri", tracking_uri, str(article)]
    assert main([*command, "--html", str(output)]) == 0
    page = output.read_text(encoding="utf-8")
    assert '<th scope="row">version</th><td>1</td>' in page and result.run_id in page
