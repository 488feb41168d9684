"""The logged model outside this project: MLflow pyfunc, a fresh virtualenv, and `make serve`."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import sklearn

from newsclf.loading import load_model
from newsclf.train.training import run as train
from tests.helpers import corpus_slice, free_port, new_store, small_config, wait_until_answering, write_jsonl

PROJECT = Path(__file__).resolve().parents[2]
ARTICLES = [
    "Artillery shelled the port overnight and troops advanced on the airfield.",
    "The foreign ministers signed a trade accord and agreed to resume talks in Geneva.",
]
MODEL_URI = "models:/test-model@champion"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """A tracking store holding one registered champion trained on a corpus slice."""
    folder = tmp_path_factory.mktemp("store")
    uri = new_store(folder / "mlflow.db")
    train(small_config(write_jsonl(folder / "slice.jsonl", corpus_slice(12))), uri)
    return uri


def _assert_agree(rows: list[dict], expected: list[dict]) -> None:
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        for key in ("topic", "tone", "tone_applies", "empty"):
            assert row[key] == want[key], key
        for key in ("topic_probability", "tone_score", "tone_applies_probability"):
            assert row[key] == pytest.approx(want[key], rel=1e-6), key


def _frame_rows(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_every_uri_form_reads_the_named_store_not_the_process_default(store, tmp_path):
    version = mlflow.MlflowClient(store).get_model_version_by_alias("test-model", "champion")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'other.db'}")  # an empty store as the process default
    try:
        expected = load_model(MODEL_URI, tracking_uri=store).predict(ARTICLES)
        for uri in (f"models:/test-model/{version.version}", version.source, f"runs:/{version.run_id}/model"):
            assert load_model(uri, tracking_uri=store).predict(ARTICLES) == expected, uri
    finally:
        mlflow.set_tracking_uri(store)


def test_python_api_cli_and_pyfunc_agree(store, tmp_path):
    expected = load_model(MODEL_URI, tracking_uri=store).predict(ARTICLES)

    records = "".join(json.dumps({"id": n, "text": text}) + "\n" for n, text in enumerate(ARTICLES))
    newsclf = str(Path(sys.executable).with_name("newsclf"))
    result = subprocess.run(
        [newsclf, "predict", "--jsonl", "--digits", "17", "--model", MODEL_URI, "--tracking-uri", store],
        input=records,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")},
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == [0, 1]
    _assert_agree(rows, expected)

    mlflow.set_tracking_uri(store)
    pyfunc = mlflow.pyfunc.load_model(MODEL_URI)
    _assert_agree(_frame_rows(pyfunc.predict(pd.DataFrame({"text": ARTICLES}))), expected)
    explained = pyfunc.predict(pd.DataFrame({"text": ARTICLES}), params={"explain": 2, "paragraphs": True})
    model = load_model(MODEL_URI, tracking_uri=store)
    assert [json.loads(cell) for cell in explained["tone_terms"]] == [
        model.explain(text, 2)["tone"]["terms"] for text in ARTICLES
    ]
    assert json.loads(explained["paragraph_tones"][0]) == model.paragraph_tones(ARTICLES[0])


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_make_serve_answers_invocations_like_the_python_api(store, tmp_path):
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"TRACKING_URI={store}", f"MODEL={MODEL_URI}", f"SERVE_PORT={port}"],
        cwd=PROJECT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/ping", server, tmp_path / "serve.log", 180)
        answer = _post(
            f"http://127.0.0.1:{port}/invocations", {"dataframe_records": [{"text": text} for text in ARTICLES]}
        )
        assert {"topic", "tone", "tone_score", "tone_applies_probability", "p_topic_sports"} <= set(
            answer["predictions"][0]
        )
        model = load_model(MODEL_URI, tracking_uri=store)
        _assert_agree(answer["predictions"], model.predict(ARTICLES))
        payload = {"dataframe_records": [{"text": ARTICLES[0]}], "params": {"explain": 3, "paragraphs": True}}
        row = _post(f"http://127.0.0.1:{port}/invocations", payload)["predictions"][0]
        assert json.loads(row["topic_terms"]) == model.explain(ARTICLES[0], 3)["topic"]["terms"]
        assert json.loads(row["paragraph_tones"]) == model.paragraph_tones(ARTICLES[0])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


# Runs in the fresh virtualenv: no newsclf, no datasets; only what pip installed for mlflow and scikit-learn.
# The folder it runs in has the user's own train.py and features.py, imported before the model loads:
# the model must load beside them and leave them as they were.
_FRESH_SCRIPT = """
import importlib.util, json, sys
sys.path.insert(0, "")
import train, features
assert importlib.util.find_spec("newsclf") is None and importlib.util.find_spec("datasets") is None
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
texts = json.loads(sys.argv[2])
frame = model.predict(pd.DataFrame({"text": texts}))
assert sys.modules["train"] is train and train.OWNER == "user", train
assert sys.modules["features"] is features and features.OWNER == "user", features
assert not any(name.startswith(("train.", "features.")) for name in sys.modules)
print(frame.to_json(orient="records"))
"""


def test_the_logged_model_runs_in_a_fresh_venv_beside_the_users_own_train_and_features(store, tmp_path):
    mlflow.set_tracking_uri(store)  # MLflow resolves models:/ against the process-wide registry
    folder = mlflow.artifacts.download_artifacts(artifact_uri=MODEL_URI, dst_path=str(tmp_path / "model"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"mlflow=={mlflow.__version__}",
            f"scikit-learn=={sklearn.__version__}",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV", "MLFLOW"))
    }
    for name in ("train", "features"):
        (tmp_path / f"{name}.py").write_text('OWNER = "user"\n')
    texts = ARTICLES + [""]
    result = subprocess.run(
        [str(python), "-c", _FRESH_SCRIPT, folder, json.dumps(texts)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_agree(
        json.loads(result.stdout.strip().splitlines()[-1]), load_model(MODEL_URI, tracking_uri=store).predict(texts)
    )


# Loads a logged model with MLflow alone, as `make serve` and any user's process do.
_PYFUNC_LOAD = """
import sys
import mlflow.pyfunc
from mlflow.exceptions import MlflowException
try:
    mlflow.pyfunc.load_model(sys.argv[1])
except MlflowException as exc:
    print(exc.message)
    sys.exit(3)
"""


def test_pyfunc_refuses_a_model_whose_bundled_code_was_changed_before_running_it(store, tmp_path):
    mlflow.set_tracking_uri(store)
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=MODEL_URI, dst_path=str(tmp_path / "model")))
    with open(folder / "code" / "newsclf" / "model.py", "a", encoding="utf-8") as handle:
        handle.write('\nraise SystemExit("pwned")\n')
    result = subprocess.run(
        [sys.executable, "-c", _PYFUNC_LOAD, str(folder)], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert "pwned" not in result.stdout + result.stderr
    assert result.returncode == 3, result.stderr[-3000:]
    assert f"{folder / 'code' / 'newsclf' / 'model.py'} changed since the model was logged" in result.stdout
