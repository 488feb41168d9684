"""The logged model's code bundle and the registry."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from newsclf.folder import ARTIFACT_KEY, CODE, MANIFEST
from newsclf.train.tracking.registry import SERVED_PACKAGE, bundle_served_code, log_model

# Imports everything a logged model runs, from the bundle alone, with the training-only libraries blocked.
_BUNDLE_CHECK = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("datasets", "matplotlib", "train", "features", "bench"):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
code, folder = sys.argv[1:]
sys.path.insert(0, code)
import newsclf.pyfunc
from newsclf.model import NewsClassifier
assert newsclf.pyfunc.__file__.startswith(code), newsclf.pyfunc.__file__
model = NewsClassifier.load(folder)
article = "Troops advanced."
print(json.dumps([model.predict(article), model.explain(article), model.paragraph_tones("Troops.\\nEnvoys.")]))
"""


@pytest.mark.slow  # a full training (or more) into a store: the slow suite
def test_the_bundled_code_runs_the_model_without_the_rest_of_the_project(tmp_path, small_model, small_model_folder):
    bundle_served_code(tmp_path / "code")
    result = subprocess.run(
        [sys.executable, "-c", _BUNDLE_CHECK, str(tmp_path / "code"), str(small_model_folder)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    prediction, explanation, paragraphs = json.loads(result.stdout)
    assert prediction == small_model.predict("Troops advanced.")
    assert explanation == small_model.explain("Troops advanced.") and len(paragraphs) == 2


@pytest.fixture(scope="module")
def logged_model(small_model, tmp_path_factory):
    """``small_model`` logged by log_model into a new store, then downloaded: a logged model's folder."""
    import mlflow

    folder = tmp_path_factory.mktemp("logged")
    previous, uri = mlflow.get_tracking_uri(), f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        # An experiment of its own: the process may still name another store's active experiment.
        with mlflow.start_run(experiment_id=mlflow.MlflowClient(uri).create_experiment("registry")):
            info = log_model(small_model, ["Troops advanced.", "Envoys met in Geneva."])
        return Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(folder / "model")))
    finally:
        mlflow.set_tracking_uri(previous)


def test_the_manifest_lists_the_digest_of_every_bundled_file(logged_model):
    root = logged_model
    manifest = json.loads((root / "artifacts" / ARTIFACT_KEY / MANIFEST).read_text())
    on_disk = {
        path.relative_to(root / "code").as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (root / "code").rglob("*")
        if path.is_file()
    }
    assert manifest[CODE] == on_disk
    # Every module of the served package, not the CLI's entry (the training code is not served).
    served = {f"newsclf/{path.name}" for path in SERVED_PACKAGE.glob("*.py") if path.name != "__main__.py"}
    assert served <= set(on_disk) and "newsclf/__main__.py" not in on_disk
    assert not any(name.startswith(("newsclf/train/", "newsclf/features/")) for name in on_disk)
    # The entry file MLflow executes is the bundle's copy, so its digest is listed too.
    assert (root / "pyfunc_model.py").read_bytes() == (root / "code" / "newsclf" / "pyfunc_model.py").read_bytes()


# Runs a logged model's entry file as MLflow does: its code/ first on sys.path, the file executed by path.
_RUN_ENTRY = """
import importlib.util, sys
model = sys.argv[1]
sys.path.insert(0, model + "/code")
spec = importlib.util.spec_from_file_location("entry", model + "/pyfunc_model.py")
spec.loader.exec_module(importlib.util.module_from_spec(spec))
import mlflow.models.model, newsclf
print(type(mlflow.models.model.__mlflow_model__).__name__, newsclf.__file__)
"""
_PWNED = '\nraise SystemExit("pwned")\n'


def _append(path, text):
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def _run_entry(model: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _RUN_ENTRY, str(model)], capture_output=True, text=True, cwd=model)


@pytest.mark.slow
def test_the_entry_file_runs_the_bundled_code_of_an_untouched_model(logged_model, tmp_path):
    model = Path(shutil.copytree(logged_model, tmp_path / "model"))  # Python may write __pycache__ into it
    result = _run_entry(model)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["NewsClassifierPyfunc", str(model / "code" / "newsclf" / "__init__.py")]
    assert _run_entry(model).returncode == 0  # bytecode caches written by the first load are no extra files


@pytest.mark.parametrize(
    "tamper, refusal",
    [
        (lambda model: _append(model / "code" / "newsclf" / "model.py", _PWNED), "newsclf/model.py changed since"),
        (
            lambda model: (model / "code" / "newsclf" / "extra.py").write_text(_PWNED),
            "extra.py is not in the manifest",
        ),
        (lambda model: (model / "code" / "newsclf" / "steps.py").unlink(), "newsclf/steps.py is missing"),
        (lambda model: _append(model / "pyfunc_model.py", _PWNED), "pyfunc_model.py changed since"),
        (lambda model: (model / "code" / "newsclf" / "cache").symlink_to(model), "newsclf/cache is a symlink"),
    ],
)
def test_the_entry_file_refuses_a_changed_bundle_before_running_any_of_it(logged_model, tmp_path, tamper, refusal):
    model = Path(shutil.copytree(logged_model, tmp_path / "model"))
    tamper(model)
    result = _run_entry(model)
    assert result.returncode != 0 and "pwned" not in result.stdout + result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: refusing to run the model's bundled code: ") and refusal in last_line
