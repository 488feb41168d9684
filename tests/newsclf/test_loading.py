import os

import mlflow
import pytest

from newsclf.errors import NewsclfError
from newsclf.loading import load_model, model_folder


def test_folders_load_as_saved_or_as_logged_mlflow_models(small_model, small_model_folder, tmp_path):
    assert model_folder(small_model_folder, tmp_path) == small_model_folder
    logged = tmp_path / "logged" / "artifacts"
    small_model.save(logged / "newsclf_model")
    assert load_model(tmp_path / "logged").predict("Envoys met.") == small_model.predict("Envoys met.")


def test_a_missing_sqlite_store_is_refused_and_not_created(tmp_path):
    uri = f"sqlite:///{tmp_path / 'missing.db'}"
    with pytest.raises(NewsclfError, match="does not exist"):
        load_model("models:/news-classifier@champion", tracking_uri=uri)
    assert not (tmp_path / "missing.db").exists()


def test_an_unknown_registered_model_is_a_clear_error(tracking_uri):
    mlflow.MlflowClient(tracking_uri).search_experiments()  # creates the empty store
    with pytest.raises(
        NewsclfError, match=r"model models:/nope@champion not found \(.*\); train one with `make train`"
    ):
        load_model("models:/nope@champion", tracking_uri=tracking_uri)


def test_text_that_is_neither_folder_nor_uri_is_refused(tmp_path):
    with pytest.raises(NewsclfError, match="neither a folder nor an MLflow URI"):
        load_model(str(tmp_path / "no-such-folder"))


def test_loading_from_the_registry_draws_no_download_bars(trained_store, capfd, monkeypatch):
    _, uri, _ = trained_store
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    load_model("models:/test-model@champion", uri)
    assert "Downloading artifacts" not in capfd.readouterr().err
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ  # the user's environment is left as it was
