"""The built wheel: one installed namespace, shipped experiments and corpus inside it, and a
training that works from a folder holding its own ``train.py`` and ``features.py``."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import PROJECT, corpus_slice, write_jsonl

# Modules a user's folder may well hold; installed, the project must not pick them up.
_SHADOWS = {name: f'raise SystemExit("the user\'s own {name}.py was imported")' for name in ("train", "features")}


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory) -> Path:
    """The project's wheel, built as pip builds it and unpacked as pip installs it."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(PROJECT), "--no-deps", "--quiet", "-w", str(folder)], check=True
    )
    [wheel] = folder.glob("newsclf-*.whl")
    site = folder / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _run(site: Path, folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    for name, text in _SHADOWS.items():
        (folder / f"{name}.py").write_text(text, encoding="utf-8")
    env = {"PYTHONPATH": str(site), "PATH": str(Path(sys.executable).parent), "HOME": str(folder)}
    return subprocess.run(
        [sys.executable, *arguments], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_the_wheel_installs_only_newsclf_with_its_experiments_and_corpus(unpacked_wheel):
    tops = {path.name for path in unpacked_wheel.iterdir() if not path.name.endswith(".dist-info")}
    assert tops == {"newsclf"}
    shipped = unpacked_wheel / "newsclf" / "train" / "_shipped"
    assert (shipped / "data" / "news_corpus.jsonl").is_file()
    assert {path.name for path in (shipped / "experiments").glob("*.toml")} == {
        path.name for path in (PROJECT / "experiments").glob("*.toml")
    }


@pytest.mark.slow
def test_an_installed_copy_trains_from_a_folder_with_its_own_train_and_features(unpacked_wheel, tmp_path):
    source = write_jsonl(tmp_path / "small.jsonl", corpus_slice(8))
    api = _run(
        unpacked_wheel,
        tmp_path,
        "-c",
        "import newsclf, newsclf.train as t; print(newsclf.__file__); print(t.load_config('default').name)",
    )
    assert api.returncode == 0, api.stderr
    assert api.stdout.splitlines() == [str(unpacked_wheel / "newsclf" / "__init__.py"), "default"]

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trained = _run(
        unpacked_wheel,
        tmp_path,
        "-m",
        "newsclf",
        "train",
        "--data",
        str(source),
        "--set",
        "calibration.methods=['none']",
        "--tracking-uri",
        store,
    )
    assert trained.returncode == 0, trained.stderr
    assert "done: news-classifier version 1" in trained.stdout + trained.stderr


@pytest.mark.slow
def test_a_shipped_experiment_without_its_data_says_to_pass_data(unpacked_wheel, tmp_path):
    result = _run(unpacked_wheel, tmp_path, "-m", "newsclf", "train", "--experiment", "cep")
    assert result.returncode != 0
    # The progress lines before it go to stderr too; the error is the one last line.
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("newsclf: error: data file not found:") and "pass --data" in line
