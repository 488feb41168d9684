"""Load a model from a local folder, a ``models:/`` registry URI or a ``runs:/`` URI."""

from __future__ import annotations

import tempfile
from pathlib import Path

from train.errors import NewsclfError
from train.model import ARTIFACT_KEY, MANIFEST, NewsClassifier


def load_model(uri: str | Path, tracking_uri: str | None = None) -> NewsClassifier:
    """Load a :class:`NewsClassifier` from a model folder or an MLflow model URI.

    ``uri`` may be a newsclf model folder, a logged MLflow model folder, ``models:/name@alias``,
    ``models:/name/version`` or ``runs:/run_id/model``. ``tracking_uri`` selects the MLflow
    store for URIs (default: MLflow's own resolution, e.g. ``MLFLOW_TRACKING_URI``).
    """
    local = Path(uri)
    if local.is_dir():
        return NewsClassifier.load(_newsclf_folder(local))
    text = str(uri)
    if not text.startswith(("models:/", "runs:/")) and "://" not in text:
        raise NewsclfError(f"model {text!r} is neither a folder nor an MLflow URI such as models:/news-classifier@champion")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking.artifact_utils import get_artifact_repository

    with tempfile.TemporaryDirectory() as tmp:
        try:
            # Only the newsclf folder: the rest of the logged model (code, env files) is not needed.
            repository = get_artifact_repository(text, tracking_uri=tracking_uri)
            path = repository.download_artifacts(f"artifacts/{ARTIFACT_KEY}", dst_path=tmp)
        except MlflowException as exc:
            raise NewsclfError(f"model {text} not found ({exc.message.splitlines()[0]})") from None
        return NewsClassifier.load(Path(path))


def _newsclf_folder(folder: Path) -> Path:
    for candidate in (folder, folder / "artifacts" / ARTIFACT_KEY):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise NewsclfError(f"{folder}: neither a newsclf model folder nor a logged newsclf MLflow model")
