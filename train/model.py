"""The saved model: a folder with one scikit-learn Pipeline per task and a manifest of labels.

A model folder holds ``newsclf-model.json`` and ``topic.joblib`` (and ``tone.joblib`` when the
tone task was trained). Each joblib file is a fitted Pipeline, raw text in, labels out, that
also loads on its own with ``joblib.load``. The manifest records the labels, the library
versions, and the SHA-256 of every file that loading will unpickle.

Unpickling runs code: load models only from folders and tracking servers you trust. The
checksums catch a file changed after saving, not a manifest forged with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.pipeline import Pipeline

from train._files import sha256_file
from train.errors import NewsclfError

MANIFEST = "newsclf-model.json"
FORMAT = "newsclf-model"
FORMAT_VERSION = 1
# Name of the model folder inside a logged MLflow model's artifacts.
ARTIFACT_KEY = "newsclf_model"


class ModelFormatError(NewsclfError):
    """A folder that is not a model this version of newsclf can load safely."""


class NewsClassifier:
    """Topic and tone pipelines with their labels; predicts on raw article text."""

    def __init__(self, topic: Pipeline, tone: Pipeline | None = None, metadata: dict[str, Any] | None = None):
        self.pipelines = {"topic": topic} | ({"tone": tone} if tone is not None else {})
        self.metadata = dict(metadata or {})

    def labels(self, task: str) -> list[str]:
        """The class labels of ``task``, in probability-column order."""
        return [str(label) for label in self.pipelines[task].classes_]

    @property
    def tasks(self) -> list[str]:
        """The tasks this model predicts, ``topic`` first."""
        return list(self.pipelines)

    def predict_proba(self, texts: Iterable[Any]) -> dict[str, np.ndarray]:
        """Class probabilities per task, one row per text, columns in :meth:`labels` order."""
        texts = _as_texts(texts)
        return {task: pipeline.predict_proba(texts) for task, pipeline in self.pipelines.items()}

    def predict(self, texts: Iterable[Any]) -> list[dict[str, Any]]:
        """One dict per text: each task's label, its probability, and every class probability."""
        probabilities = self.predict_proba(texts)
        rows: list[dict[str, Any]] = [{} for _ in range(len(probabilities["topic"]))]
        for task, proba in probabilities.items():
            labels = self.labels(task)
            best = proba.argmax(axis=1)
            for row, scores, winner in zip(rows, proba, best):
                row[task] = labels[winner]
                row[f"{task}_probability"] = float(scores[winner])
                row[f"{task}_probabilities"] = dict(zip(labels, map(float, scores)))
        return rows

    def predict_frame(self, texts: Iterable[Any]):
        """Predictions as a flat pandas DataFrame: label, probability and ``p_<task>_<label>`` columns."""
        import pandas as pd

        probabilities = self.predict_proba(texts)
        columns: dict[str, Any] = {}
        for task, proba in probabilities.items():
            labels = self.labels(task)
            columns[task] = [labels[i] for i in proba.argmax(axis=1)]
            columns[f"{task}_probability"] = proba.max(axis=1)
        for task, proba in probabilities.items():
            for j, label in enumerate(self.labels(task)):
                columns[f"p_{task}_{label}"] = proba[:, j]
        return pd.DataFrame(columns)

    def save(self, folder: str | Path) -> Path:
        """Write the model folder (created if missing; existing model files are replaced)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tasks = {}
        for task, pipeline in self.pipelines.items():
            filename = f"{task}.joblib"
            joblib.dump(pipeline, folder / filename, compress=3)
            tasks[task] = {"file": filename, "sha256": sha256_file(folder / filename), "labels": self.labels(task)}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "scikit_learn_version": sklearn.__version__,
            "tasks": tasks,
            "metadata": self.metadata,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "NewsClassifier":
        """Load a model folder, refusing unknown formats, other scikit-learn versions and changed files."""
        folder = Path(folder)
        manifest = read_manifest(folder)
        pipelines = {}
        for task, entry in manifest["tasks"].items():
            path = folder / entry["file"]
            if not path.is_file():
                raise ModelFormatError(f"{folder}: {entry['file']} is missing; the model folder is incomplete")
            if sha256_file(path) != entry["sha256"]:
                raise ModelFormatError(f"{path}: SHA-256 does not match the manifest; refusing to unpickle a changed file")
            pipelines[task] = joblib.load(path)
            if [str(c) for c in pipelines[task].classes_] != entry["labels"]:
                raise ModelFormatError(f"{path}: labels differ from the manifest; the model folder is inconsistent")
        return cls(pipelines["topic"], pipelines.get("tone"), manifest.get("metadata"))


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check a model folder's manifest without unpickling anything."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ModelFormatError(f"{folder}: not a newsclf model folder (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: unreadable manifest ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise ModelFormatError(f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: format version {version!r} is not supported (this newsclf reads version {FORMAT_VERSION}); "
            "retrain the model or install the newsclf release that wrote it"
        )
    saved = manifest.get("scikit_learn_version", "")
    if saved.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise ModelFormatError(
            f"{path}: saved with scikit-learn {saved}, running {sklearn.__version__}; "
            f"install scikit-learn=={saved} to load it, or retrain"
        )
    if "topic" not in manifest.get("tasks", {}):
        raise ModelFormatError(f"{path}: the manifest lists no topic task")
    return manifest


def _as_texts(texts: Iterable[Any]) -> list[str]:
    """Coerce inputs to strings: None becomes empty, bytes are decoded leniently."""
    if isinstance(texts, (str, bytes)):
        raise TypeError("predict takes a list of texts; wrap a single text in a list")
    return [_as_text(item) for item in texts]


def _as_text(item: Any) -> str:
    if item is None:
        return ""
    if isinstance(item, bytes):
        return item.decode("utf-8", errors="replace")
    if isinstance(item, float) and item != item:  # pandas missing value
        return ""
    return str(item)

