"""The newsclf command: one-line errors with a non-zero exit, and the real thing end to end."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from newsclf.train.cli import _QUIET, main
from tests.helpers import corpus_slice, new_store, write_jsonl


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "/no/such/file.jsonl"], "data file not found: /no/such/file.jsonl"),
        (["train", "--experiment", "missing"], "experiment 'missing' not found"),
        (["train", "--set", "topic.C"], "must look like section.key=value"),
        (["train", "--set", "topic.gamma=1"], "unknown key 'topic.gamma'"),
        (
            ["evaluate", "--model", "models:/news-classifier@champion"],
            "model models:/news-classifier@champion not found",
        ),
        (["evaluate", "--model", "no-such-folder"], "is neither a folder nor an MLflow URI"),
        (["evaluate", "--resamples", "10"], "--resamples: resamples must be >= 100"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert (
        main(argv + (["--tracking-uri", f"sqlite:///{tmp_path}/m.db"] if argv[0] in ("train", "evaluate") else []))
        == 2
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("newsclf: error: ") and message in errors[0]


def _one_error_line(capsys) -> str:
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("newsclf: error: "), errors
    return errors[0]


def test_predict_errors_are_one_line_and_exit_2(tmp_path, small_model_folder, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"body": "no text"}\n', encoding="utf-8")
    cases = [
        (["predict", "--model", str(small_model_folder), str(tmp_path / "none.txt")], "input file not found"),
        (["predict", "--model", str(small_model_folder), "--jsonl", str(bad)], 'bad.jsonl line 2: no "text" field'),
        (["predict", "--model", str(tmp_path / "nowhere"), str(bad)], "is neither a folder nor an MLflow URI"),
        (
            ["predict", "--model", str(tmp_path), str(bad)],
            "neither a newsclf model folder nor a logged newsclf MLflow model",
        ),
        (
            ["predict", "--tracking-uri", f"sqlite:///{tmp_path}/none.db", str(bad)],
            f"tracking store sqlite:///{tmp_path}/none.db does not exist",
        ),
        (
            ["predict", "--model", str(small_model_folder), "--output", str(tmp_path / "no" / "out.jsonl"), str(bad)],
            "does not exist",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in _one_error_line(capsys)
    assert not (tmp_path / "none.db").exists()


def test_predict_writes_one_json_object_per_article(tmp_path, small_model, small_model_folder, capsys, monkeypatch):
    texts = ["Troops shelled the port overnight.", "Envoys signed an accord in Geneva."]
    for name, text in zip(("a.txt", "b.txt"), texts):
        (tmp_path / name).write_text(text, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "predict",
                "--model",
                str(small_model_folder),
                "--top-k",
                "2",
                "--output",
                str(out),
                str(tmp_path / "a.txt"),
                str(tmp_path / "b.txt"),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    for row, expected in zip(rows, small_model.predict(texts)):
        # Rounded to 4 places by default (--digits).
        assert row["topic"] == expected["topic"] and row["tone_score"] == round(expected["tone_score"], 4)
        assert len(row["topic_probabilities"]) == 2
    assert "wrote 2 predictions" in capsys.readouterr().err

    stdin = io.TextIOWrapper(io.BytesIO(b'{"id": 9, "text": "Troops shelled the port overnight."}\n'))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["predict", "--model", str(small_model_folder), "--jsonl", "--explain", "--paragraphs"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["id"] == 9 and row["explanation"]["tone"]["terms"] and row["paragraphs"][0]["paragraph"] == 1


def test_empty_corpus_is_refused(tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("")
    assert (
        main(["train", "--data", str(tmp_path / "empty.jsonl"), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    )
    assert "newsclf: error:" in capsys.readouterr().err
    assert not (tmp_path / "m.db").exists()


@pytest.mark.slow
def test_newsclf_train_end_to_end(tmp_path):
    """The real console command on a slice of the corpus, into a temporary tracking store."""
    data = write_jsonl(tmp_path / "slice.jsonl", corpus_slice(12))
    uri = new_store(tmp_path / "mlflow.db")
    command = [str(Path(sys.executable).with_name("newsclf")), "train", "--data", str(data), "--tracking-uri", uri]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env=os.environ | {"MLFLOW_TRACKING_URI": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "registered models:/news-classifier/1" in result.stdout and "promoted to @champion" in result.stdout
    assert "fitting topic model" in result.stderr  # the progress display
    # Only our own lines: no Hugging Face progress bar, no MLflow INFO or registry line.
    assert all(re.match(r"\[ *\d+\.\ds\] ", line) for line in result.stderr.splitlines()), result.stderr

    client = MlflowClient(uri)
    version = client.get_model_version_by_alias("news-classifier", "champion")
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED" and run.data.params["data.source"] == str(data)
    assert 0.0 <= run.data.metrics["test/topic/macro_f1"] <= 1.0 and "validation/tone/log_loss" in run.data.metrics
    artifacts = {a.path for folder in ("topic", "tone") for a in client.list_artifacts(run.info.run_id, folder)}
    assert {"topic/confusion_matrix_test.png", "tone/confusion_matrix_test.png", "topic/top_terms.json"} <= artifacts
    top_terms = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="tone/top_terms.json", tracking_uri=uri
            )
        ).read_text()
    )
    assert set(top_terms) == {"military", "diplomatic"}

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/news-classifier@champion")
    assert model.metadata.signature.inputs.input_names() == ["text"]
    frame = model.predict(
        pd.DataFrame(
            {"text": ["Troops shelled the border town overnight.", "The league title went to the final day."]}
        )
    )
    assert len(frame) == 2 and set(frame["tone"]) <= {"military", "diplomatic"}


@pytest.mark.slow
def test_newsclf_evaluate_end_to_end(tmp_path):
    """Train with the real command, then `newsclf evaluate` with no arguments and with --data and --compare."""
    data = write_jsonl(tmp_path / "slice.jsonl", corpus_slice(12))
    held_out = write_jsonl(
        tmp_path / "held_out.jsonl", [item for item in corpus_slice(16) if item not in corpus_slice(12)]
    )
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    newsclf = str(Path(sys.executable).with_name("newsclf"))

    def run(*args):
        result = subprocess.run([newsclf, *args], capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env)
        assert result.returncode == 0, result.stderr
        return result

    trained = run("train", "--data", str(data), "--quiet")
    assert trained.stderr.strip() == "" and trained.stdout.startswith("topic: validation macro-F1")
    default = run("evaluate")
    assert "topic: accuracy" in default.stdout and "evaluating on" in default.stderr
    report = tmp_path / "reports" / "evaluation" / "news-classifier-v1"
    assert (report / "report.md").is_file() and (report / "topic_reliability.png").stat().st_size > 5000
    text = (report / "report.md").read_text()
    assert "test split of" in text and "## Topic" in text and "## Tone" in text

    compared = run(
        "evaluate",
        "--model",
        "models:/news-classifier/1",
        "--data",
        str(held_out),
        "--compare",
        "models:/news-classifier@champion",
        "--output",
        "cmp",
        "--quiet",
    )
    assert "compared with models:/news-classifier@champion: no significant difference" in compared.stdout
    assert compared.stderr.strip() == ""  # --quiet: no progress, no MLflow chatter
    assert (
        json.loads((tmp_path / "cmp" / "metrics.json").read_text())["comparison"]["verdict"]
        == "no significant difference"
    )


@pytest.mark.slow
def test_verbose_shows_the_libraries_lines(tmp_path):
    data = write_jsonl(tmp_path / "slice.jsonl", corpus_slice(10))
    uri = new_store(tmp_path / "mlflow.db")
    command = [str(Path(sys.executable).with_name("newsclf")), "train", "--data", str(data), "--tracking-uri", uri]
    # Without the settings in-process CLI tests leave in this environment, as a user's shell would be.
    env = {key: value for key, value in os.environ.items() if key not in _QUIET} | {"MLFLOW_TRACKING_URI": ""}
    result = subprocess.run([*command, "--verbose"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "Successfully registered model 'news-classifier'" in result.stderr


def test_predict_formats_refuse_what_they_cannot_hold(small_model_folder, tmp_path, capsys):
    article = tmp_path / "a.txt"
    article.write_text("Envoys met in Geneva.", encoding="utf-8")
    model = ["--model", str(small_model_folder)]
    assert main(["predict", str(article), *model, "--format", "csv", "--explain"]) == 2
    assert "--format csv holds the one-value fields only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", str(article), *model, "--threshold", "1.5"])
    assert "'1.5' is not a probability from 0 to 1" in capsys.readouterr().err
    assert main(["predict", str(article), *model, "--format", "table", "--digits", "2"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["id", "topic", "p"] and len(row.split()[2]) <= 4
