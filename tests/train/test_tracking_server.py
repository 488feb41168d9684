"""Everything through a real `mlflow server` on 127.0.0.1 (SQLite backend, proxied artifacts):
train, promote, predict, evaluate and print the card, as a team sharing a tracking server would."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.helpers import corpus_slice, free_port, wait_until_answering, write_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path):
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/health", process, tmp_path / "server.log", 120)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def _newsclf(*args: str, cwd) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "newsclf", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_train_promote_predict_evaluate_and_card_through_a_tracking_server(server, tmp_path):
    data = write_jsonl(tmp_path / "slice.jsonl", corpus_slice(10))
    common = ["--tracking-uri", server]
    trained = _newsclf(
        "train", "--quiet", "--data", str(data), "--set", "features.char.ngram_range=[3,4]", *common, cwd=tmp_path
    )
    assert "promoted to @champion" in trained.stdout
    again = _newsclf(
        "train", "--quiet", "--data", str(data), "--set", "features.char.ngram_range=[3,4]", *common, cwd=tmp_path
    )
    assert "champion kept: no significant difference from version 1" in again.stdout
    article = tmp_path / "article.txt"
    article.write_text("Artillery shelled the port overnight as envoys met in Doha.")
    (prediction,) = [
        json.loads(line) for line in _newsclf("predict", str(article), *common, cwd=tmp_path).stdout.splitlines()
    ]
    assert prediction["topic"] and 0 <= prediction["tone_score"] <= 1
    evaluated = _newsclf("evaluate", "--quiet", "--output", str(tmp_path / "report"), *common, cwd=tmp_path)
    assert "topic: accuracy" in evaluated.stdout and (tmp_path / "report" / "report.md").is_file()
    card = _newsclf("card", *common, cwd=tmp_path).stdout
    assert card.startswith("# news-classifier version 1\n") and "## How well it does" in card
    assert not (tmp_path / "mlruns").exists()  # every artifact went to the server
