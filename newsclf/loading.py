"""Load a model from a local folder, a ``models:/`` registry URI or a ``runs:/`` URI."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from newsclf.errors import NewsclfError
from newsclf.folder import ARTIFACT_KEY, MANIFEST
from newsclf.model import NewsClassifier

# How MLflow's REST client words a server it cannot reach (requests' connection errors).
_UNREACHABLE = re.compile(r"Max retries exceeded|Failed to establish a new connection|Connection refused|timed out")


def load_model(uri: str | Path, tracking_uri: str | None = None) -> NewsClassifier:
    """Load a :class:`NewsClassifier` from a model folder or an MLflow model URI.

    ``uri`` may be a newsclf model folder, a logged MLflow model folder, ``models:/name@alias``,
    ``models:/name/version`` or ``runs:/run_id/model``. ``tracking_uri`` selects the MLflow
    store for URIs (default: MLflow's own resolution, e.g. ``MLFLOW_TRACKING_URI``).
    Loading unpickles code: load only models from folders and stores you trust.
    """
    with tempfile.TemporaryDirectory() as scratch:
        return NewsClassifier.load(model_folder(uri, scratch, tracking_uri))


def model_folder(uri: str | Path, scratch: str | Path, tracking_uri: str | None = None) -> Path:
    """The newsclf model folder behind ``uri``: a local folder itself, or a copy downloaded into ``scratch``."""
    local = Path(uri)
    if local.is_dir():
        return _newsclf_folder(local)
    text = str(uri)
    if not text.startswith(("models:/", "runs:/")) and "://" not in text:
        raise NewsclfError(
            f"model {text!r} is neither a folder nor an MLflow URI such as models:/news-classifier@champion"
        )
    _require_sqlite_store(tracking_uri)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking.artifact_utils import get_artifact_repository

    Path(scratch).mkdir(parents=True, exist_ok=True)
    try:
        location = _logged_model_location(text, tracking_uri)
        # Only the newsclf folder: the rest of the logged model (code, env files) is not needed.
        repository = get_artifact_repository(location, tracking_uri=tracking_uri)
        with _no_download_bars():
            return Path(repository.download_artifacts(f"artifacts/{ARTIFACT_KEY}", dst_path=str(scratch)))
    except MlflowException as exc:
        if _UNREACHABLE.search(exc.message):
            raise NewsclfError(
                f"tracking store {tracking_uri or 'from MLFLOW_TRACKING_URI'} is unreachable while looking up {text}; "
                "start it, or point --tracking-uri or MLFLOW_TRACKING_URI at a running one"
            ) from None
        raise NewsclfError(
            f"model {text} not found ({exc.message.splitlines()[0]}); "
            "train one with `make train` or pass another --model"
        ) from None


def _logged_model_location(uri: str, tracking_uri: str | None) -> str:
    """Where the logged model behind a ``models:/`` or ``runs:/`` URI keeps its files.

    Resolved with a client on ``tracking_uri``: MLflow's own handling of these URIs asks the
    process-wide tracking store and registry, whatever store the caller named.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if uri.startswith("runs:/"):
        run_id, _, name = uri.removeprefix("runs:/").strip("/").partition("/")
        run = client.get_run(run_id)
        for output in run.outputs.model_outputs if run.outputs else []:
            logged = client.get_logged_model(output.model_id)
            if logged.name == name:
                return logged.artifact_location
        return f"{run.info.artifact_uri}/{name}"
    if not uri.startswith("models:/"):
        return uri
    version = registered_version(client, uri)
    if version is None:  # a logged model id, models:/m-...
        return client.get_logged_model(uri.removeprefix("models:/").strip("/")).artifact_location
    return client.get_model_version_download_uri(version.name, version.version)


def registered_version(client, uri: str):
    """The registry's model version behind ``models:/name@alias`` or ``models:/name/version``; None for other URIs.

    Raises MlflowException when the registry has no such name, alias or version.
    """
    if not uri.startswith("models:/"):
        return None
    path = uri.removeprefix("models:/").strip("/")
    if "@" in path:
        return client.get_model_version_by_alias(*path.split("@", 1))
    if "/" in path:
        return client.get_model_version(*path.split("/", 1))
    return None


def _require_sqlite_store(tracking_uri: str | None) -> None:
    """Refuse a SQLite store file that does not exist, which MLflow would silently create empty."""
    if tracking_uri is None:
        import mlflow

        tracking_uri = mlflow.get_tracking_uri()
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise NewsclfError(
                f"tracking store {tracking_uri} does not exist; run from the project folder, "
                "or point --tracking-uri or MLFLOW_TRACKING_URI at the store"
            )


def _newsclf_folder(folder: Path) -> Path:
    for candidate in (folder, folder / "artifacts" / ARTIFACT_KEY):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise NewsclfError(f"{folder}: neither a newsclf model folder nor a logged newsclf MLflow model")


@contextlib.contextmanager
def _no_download_bars() -> Iterator[None]:
    """MLflow's "Downloading artifacts" bars off while a model loads (a notebook printed them on every
    load), unless the user's environment asks for them."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if name in os.environ:
        yield
        return
    os.environ[name] = "false"
    try:
        yield
    finally:
        os.environ.pop(name, None)
