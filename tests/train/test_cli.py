"""The newsclf command: one-line errors with a non-zero exit, and the real thing end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import corpus_slice, write_jsonl
from train.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "/no/such/file.jsonl"], "data file not found: /no/such/file.jsonl"),
        (["train", "--experiment", "missing"], "experiment 'missing' not found"),
        (["train", "--set", "topic.C"], "must look like section.key=value"),
        (["train", "--set", "topic.gamma=1"], "unknown key 'topic.gamma'"),
        (["bench", "--data", "/no/such/dir"], "real data not found"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert main(argv + (["--tracking-uri", f"sqlite:///{tmp_path}/m.db"] if argv[0] == "train" else [])) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("newsclf: error: ") and message in errors[0]


def test_empty_corpus_is_refused(tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["train", "--data", str(tmp_path / "empty.jsonl"), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 2
    assert "newsclf: error:" in capsys.readouterr().err
    assert not (tmp_path / "m.db").exists()


@pytest.mark.slow
def test_newsclf_train_end_to_end(tmp_path):
    """The real console command on a slice of the corpus, into a temporary tracking store."""
    data = write_jsonl(tmp_path / "slice.jsonl", corpus_slice(12))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [str(Path(sys.executable).with_name("newsclf")), "train", "--data", str(data), "--tracking-uri", uri]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600, env=os.environ | {"MLFLOW_TRACKING_URI": ""})
    assert result.returncode == 0, result.stderr
    assert "registered models:/news-classifier/1" in result.stdout and "promoted to @champion" in result.stdout
    assert "fitting topic model" in result.stderr  # the progress display

    client = MlflowClient(uri)
    version = client.get_model_version_by_alias("news-classifier", "champion")
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED" and run.data.params["data.source"] == str(data)
    assert 0.0 <= run.data.metrics["test_topic_macro_f1"] <= 1.0 and "validation_tone_log_loss" in run.data.metrics
    artifacts = {a.path for folder in ("topic", "tone") for a in client.list_artifacts(run.info.run_id, folder)}
    assert {"topic/confusion_matrix_test.png", "tone/confusion_matrix_test.png", "topic/top_terms.json"} <= artifacts
    top_terms = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="tone/top_terms.json", tracking_uri=uri)).read_text())
    assert set(top_terms) == {"military", "diplomatic"}

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/news-classifier@champion")
    assert model.metadata.signature.inputs.input_names() == ["text"]
    frame = model.predict(pd.DataFrame({"text": ["Troops shelled the border town overnight.", "The league title went to the final day."]}))
    assert len(frame) == 2 and set(frame["tone"]) <= {"military", "diplomatic"}
