"""Fixtures only; the helpers they use are in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import (
    PROJECT,
    SHARED,
    build_small_model,
    corpus_slice,
    new_store,
    tiny_classifier,
    train_into_new_store,
    write_jsonl,
)

# What a stray relative path would leave in the project folder.
GENERATED = ("mlruns", "mlartifacts", "mlflow.db", "reports", "models")


@pytest.fixture(scope="session", autouse=True)
def _session_outside_the_project(tmp_path_factory):
    """Module- and session-scoped fixtures (shared stores) also run outside the project folder; at the
    end, no generated output may have appeared in it."""
    before = {name for name in GENERATED if (PROJECT / name).exists()}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("session-cwd"))
        yield
    written = {name for name in GENERATED if (PROJECT / name).exists()} - before
    assert not written, f"the tests wrote {sorted(written)} into the project folder"


@pytest.fixture(autouse=True)
def _outside_the_project(tmp_path_factory, monkeypatch):
    """Every test runs in a folder of its own, so nothing relative (mlruns/, reports/) lands in the project."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A 100-article JSON Lines file: 10 per topic, with both tones present."""
    return write_jsonl(tmp_path / "small.jsonl", corpus_slice(10))


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    """A new, empty SQLite tracking store."""
    return new_store(tmp_path / "mlflow.db")


@pytest.fixture
def shared_path() -> Path:
    """../shared beside the project (or $NEWSCLF_SHARED): real data and the seed article.

    Skipped where it is absent, except in CI (.ci/run sets NEWSCLF_REQUIRE_SHARED=1), where it must be there.
    """
    if not SHARED.is_dir():
        message = f"{SHARED} is missing; set NEWSCLF_SHARED to the folder holding data/ and seeds/"
        if os.environ.get("NEWSCLF_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED


@pytest.fixture(scope="session")
def tiny_model():
    """Trained on 6 articles per topic of the shipped corpus, word features only."""
    return tiny_classifier(corpus_slice(6))


@pytest.fixture(scope="session")
def small_model():
    """One small fitted model for the whole test session; tests must not change it."""
    return build_small_model()


@pytest.fixture(scope="session")
def small_model_folder(small_model, tmp_path_factory) -> Path:
    """``small_model`` saved as a model folder."""
    return small_model.save(tmp_path_factory.mktemp("model") / "newsclf_model")


@pytest.fixture(scope="session")
def _trained_store_template(tmp_path_factory):
    """The fast suite's one full training (calibrated as `make train` calibrates), into a store that
    :func:`trained_store` copies: training it again per module was most of the suite's time."""
    folder = tmp_path_factory.mktemp("trained-template")
    return folder, train_into_new_store(folder, calibration={"methods": ["sigmoid", "temperature"]})


@pytest.fixture(scope="module")
def trained_store(_trained_store_template, tmp_path_factory):
    """A store of its own for the module, holding version 1 of test-model (champion), trained on 10
    articles per topic: (config, tracking URI, training result). Its runs' artifacts stay in the
    template's folder, where the copy's new runs write theirs too (under their own ids)."""
    folder, (config, uri, result) = _trained_store_template
    copy = tmp_path_factory.mktemp("store")
    shutil.copy(folder / "mlflow.db", copy / "mlflow.db")
    return config, f"sqlite:///{copy / 'mlflow.db'}", result
