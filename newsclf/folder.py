"""The model folder format: one joblib file per fitted estimator and a manifest that vouches for them.

A model folder holds ``newsclf-model.json`` and ``topic.joblib`` (and ``tone.joblib`` when the
tone task was trained, ``tone_applies.joblib`` when the data had articles with and without a
tone). The task files are fitted Pipelines, raw text in, labels out, that also load on their own
with ``joblib.load`` once this package is importable. The manifest records the labels, the
library versions, and the SHA-256 of every file that loading will unpickle.

Unpickling runs code: load models only from folders and tracking servers you trust. The
checksums catch a file changed after saving, not a manifest forged with it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import joblib
import sklearn

from newsclf._files import sha256_file
from newsclf.errors import ModelFormatError
from newsclf.steps import classifier_of

MANIFEST = "newsclf-model.json"
FORMAT = "newsclf-model"
# Version 3: the pickles name this package (newsclf.cleaning, newsclf.counting). Versions 1 and 2
# named the modules train.* and features.* of earlier releases; they still load (see
# _legacy_module_names). Version 2 added BulkTfidfVectorizer blocks to version 1's TfidfVectorizer.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
# Name of the model folder inside a logged MLflow model's artifacts.
ARTIFACT_KEY = "newsclf_model"
# The optional model of whether the tone axis applies: outside "tasks", as it reads the topic
# pipeline's features, not text.
TONE_APPLIES = "tone_applies"
# Where versions 1 and 2 pickled the classes that now live in this package.
_LEGACY_MODULES = {"features.cleaning": "newsclf.cleaning", "features.counting": "newsclf.counting"}


def save_folder(pipelines: Mapping[str, Any], tone_applies: Any, metadata: dict[str, Any], folder: Path) -> Path:
    """Write the estimators and their manifest into ``folder`` (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scikit_learn_version": sklearn.__version__,
        "tasks": {task: _dump(pipeline, folder / f"{task}.joblib") for task, pipeline in pipelines.items()},
        "metadata": metadata,
    }
    if tone_applies is not None:
        manifest[TONE_APPLIES] = _dump(tone_applies, folder / f"{TONE_APPLIES}.joblib")
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def load_folder(folder: Path) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """The task pipelines, the tone-applies model (or None) and the metadata of a checked model folder."""
    manifest = read_manifest(folder)
    names = _legacy_module_names() if manifest["format_version"] < 3 else contextlib.nullcontext()
    with names:
        pipelines = {task: _load_checked(folder, entry) for task, entry in manifest["tasks"].items()}
        applies = _load_checked(folder, manifest[TONE_APPLIES]) if TONE_APPLIES in manifest else None
    if applies is not None and applies.n_features_in_ != classifier_of(pipelines["topic"]).n_features_in_:
        raise ModelFormatError(
            f"{folder}: {TONE_APPLIES} does not fit the topic features; the model folder is inconsistent"
        )
    return pipelines, applies, manifest.get("metadata") or {}


@contextlib.contextmanager
def _legacy_module_names() -> Iterator[None]:
    """Let version 1-2 pickles find their classes under the module names they were saved with.

    The names are bound only while unpickling and only where nothing else holds them, so a caller's
    own ``features`` package is never replaced or imported.
    """
    added = [old for old in _LEGACY_MODULES if old not in sys.modules]
    for old in added:
        sys.modules[old] = importlib.import_module(_LEGACY_MODULES[old])
    try:
        yield
    finally:
        for old in added:
            sys.modules.pop(old, None)


def _dump(estimator: Any, path: Path) -> dict[str, Any]:
    joblib.dump(estimator, path, compress=3)
    return {"file": path.name, "sha256": sha256_file(path), "labels": [str(label) for label in estimator.classes_]}


def _load_checked(folder: Path, entry: dict[str, Any]) -> Any:
    """Unpickle one file of the manifest, only once its checksum matches."""
    path = folder / entry["file"]
    if not path.is_file():
        raise ModelFormatError(f"{folder}: {entry['file']} is missing; the model folder is incomplete")
    if sha256_file(path) != entry["sha256"]:
        raise ModelFormatError(f"{path}: SHA-256 does not match the manifest; refusing to unpickle a changed file")
    try:
        estimator = joblib.load(path)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ModelFormatError(
            f"{path}: needs code this newsclf does not have ({exc}); load it with the newsclf release that wrote it"
        ) from None
    if [str(label) for label in estimator.classes_] != entry["labels"]:
        raise ModelFormatError(f"{path}: labels differ from the manifest; the model folder is inconsistent")
    return estimator


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
    if version not in READABLE_VERSIONS:
        raise ModelFormatError(
            f"{path}: format version {version!r} is not supported "
            f"(this newsclf reads versions {list(READABLE_VERSIONS)}); "
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
