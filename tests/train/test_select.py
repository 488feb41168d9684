"""newsclf select: the most uncertain articles first, one per near-duplicate story, spread by topic on request."""

import json

import numpy as np
import pytest

from newsclf.errors import NewsclfError
from newsclf.train.cli import main
from newsclf.train.data.articles import UnlabelledArticle
from newsclf.train.jobs.select import _uncertainty, choose
from tests.helpers import corpus_slice, write_jsonl


def _articles(items):
    return [UnlabelledArticle(item["id"], item["text"], None) for item in items]


def test_uncertainty_is_zero_when_sure_and_one_for_a_coin_toss():
    proba = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.6, 0.3, 0.1]])
    assert _uncertainty(proba, "margin").tolist() == pytest.approx([0.0, 1.0, 0.7])
    entropy = _uncertainty(np.array([[1.0, 0.0], [0.5, 0.5]]), "entropy")
    assert entropy.tolist() == pytest.approx([0.0, 1.0], abs=1e-9)


def test_the_most_uncertain_come_first_and_a_story_is_chosen_once(small_model):
    articles = _articles(corpus_slice(3))
    chosen = choose(small_model, articles, budget=10)
    scores = [choice.score for choice in chosen]
    assert len(chosen) == 10 and scores == sorted(scores, reverse=True)
    # Ten copies of the most uncertain article count as one story, which stands for the other nine.
    top = chosen[0].article
    again = choose(small_model, articles + [UnlabelledArticle(f"copy-{n}", top.text, None) for n in range(9)], 10)
    assert [choice.article.text for choice in again].count(top.text) == 1
    assert "stands for 9 near-duplicate(s)" in again[0].why and "topic entropy" in again[0].why


def test_by_topic_spreads_the_budget_and_random_is_a_seeded_baseline(small_model):
    articles = _articles(corpus_slice(4))
    spread = choose(small_model, articles, budget=10, by_topic=True)
    assert len({choice.guess["topic"] for choice in spread}) == len(
        {c.guess["topic"] for c in choose(small_model, articles, 40)}
    )
    first, second = (choose(small_model, articles, 5, "random", seed=3) for _ in range(2))
    assert [c.article.id for c in first] == [c.article.id for c in second]
    assert all(choice.why.startswith("random sample") for choice in first)


def test_bad_requests_are_one_line(small_model):
    with pytest.raises(NewsclfError, match="strategy 'loudest'"):
        choose(small_model, _articles(corpus_slice(1)), 3, "loudest")
    with pytest.raises(NewsclfError, match="no articles to select from"):
        choose(small_model, [], 3)


@pytest.mark.slow  # end to end through the CLI
def test_select_through_the_cli_writes_lines_to_label(small_model_folder, tmp_path, capsys):
    data = write_jsonl(tmp_path / "new.jsonl", [{"id": i["id"], "text": i["text"]} for i in corpus_slice(2)])
    output = tmp_path / "to_label.jsonl"
    argv = [
        "select",
        "--model",
        str(small_model_folder),
        "--data",
        str(data),
        "--budget",
        "5",
        "--output",
        str(output),
    ]
    assert main([*argv, "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}", "--quiet"]) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 5 and {"id", "text", "guess", "score", "why"} <= set(rows[0])
    assert rows[0]["guess"]["topic"] in {item["topic"] for item in corpus_slice(1)}
    assert "chose 5 article(s)" in capsys.readouterr().out
