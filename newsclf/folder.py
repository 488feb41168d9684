"""The model folder format: one joblib file per fitted estimator and a manifest that vouches for them.

A model folder holds ``newsclf-model.json`` and ``topic.joblib`` (and ``tone.joblib`` when the
tone task was trained, ``tone_applies.joblib`` when the data had articles with and without a
tone). The task files are fitted Pipelines, raw text in, labels out, that also load on their own
with ``joblib.load`` once this package is importable. The manifest records the labels, the
library versions, and the SHA-256 of every file that loading will unpickle; inside a logged MLflow
model also (``code``) the SHA-256 of every file of the bundled code, which the entry file
``pyfunc_model.py`` checks before running any of it.

Unpickling runs code: load models only from folders and tracking servers you trust. The
checksums catch a file changed after saving, not a manifest forged with it. The manifest may name
only plain file names, and loading refuses symlinks and anything resolving outside the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import re
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
# Version 4: a BulkTfidfVectorizer pickles its vocabulary as one string of terms (newsclf.counting),
# which a version-3 reader would not know to read. Version 3: the pickles name this package
# (newsclf.cleaning, newsclf.counting). Versions 1 and 2 named the modules train.* and features.* of
# earlier releases; they still load (see _legacy_module_names). Version 2 added BulkTfidfVectorizer
# blocks to version 1's TfidfVectorizer.
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
# Name of the model folder inside a logged MLflow model's artifacts.
ARTIFACT_KEY = "newsclf_model"
# The optional model of whether the tone axis applies: outside "tasks", as it reads the topic
# pipeline's features, not text.
TONE_APPLIES = "tone_applies"
# The manifest section with the SHA-256 of each file of a logged model's bundled code, by its POSIX
# path relative to the logged model's code/ folder (MLflow's name for it).
CODE = "code"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Besides "/": what would let a manifest path leave its folder on some system (Windows separators and
# drive letters) or fail to open at all (NUL).
_NOT_IN_A_NAME = "\\:\0"
# A manifest that fails the checks below was not written by newsclf as it stands.
_DAMAGED = "the manifest is damaged or forged; restore the model folder from where it was saved, or retrain"
# Where versions 1 and 2 pickled the classes that now live in this package.
_LEGACY_MODULES = {"features.cleaning": "newsclf.cleaning", "features.counting": "newsclf.counting"}


def save_folder(
    pipelines: Mapping[str, Any],
    tone_applies: Any,
    metadata: dict[str, Any],
    folder: Path,
    code: Mapping[str, str] | None = None,
) -> Path:
    """Write the estimators and their manifest into ``folder`` (created if missing).

    ``code`` (see :func:`code_digests`) records the bundled code of a logged MLflow model.
    """
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
    if code is not None:
        manifest[CODE] = dict(code)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def code_digests(code_folder: Path) -> dict[str, str]:
    """The manifest's ``code`` section for a bundle: the SHA-256 of every file under ``code_folder``,
    by its POSIX path relative to ``code_folder``."""
    files = sorted(path for path in Path(code_folder).rglob("*") if path.is_file())
    return {path.relative_to(code_folder).as_posix(): sha256_file(path) for path in files}


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
    """Unpickle one file of the (checked) manifest: a regular file inside ``folder`` whose checksum matches."""
    path = folder / entry["file"]
    if path.is_symlink():
        raise ModelFormatError(f"{path} is a symlink; a model folder must hold its files itself: copy the file in")
    if not path.is_file():
        raise ModelFormatError(f"{folder}: {entry['file']} is missing; the model folder is incomplete")
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ModelFormatError(f"{path}: resolves outside the model folder; {_DAMAGED}")
    # The bytes checked are the bytes unpickled: the file cannot change in between.
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != entry["sha256"]:
        raise ModelFormatError(f"{path}: SHA-256 does not match the manifest; refusing to unpickle a changed file")
    try:
        estimator = joblib.load(io.BytesIO(content))
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ModelFormatError(
            f"{path}: needs code this newsclf does not have ({exc}); load it with the newsclf release that wrote it"
        ) from None
    except Exception as exc:  # whatever a file that is no joblib pickle makes the unpickler raise
        raise ModelFormatError(
            f"{path}: not a readable joblib file ({type(exc).__name__}: {exc}); {_DAMAGED}"
        ) from None
    labels = getattr(estimator, "classes_", None)  # None: not a fitted classifier at all
    if labels is None or [str(label) for label in labels] != entry["labels"]:
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
    except RecursionError:  # a manifest nested thousands deep: no newsclf wrote it
        raise ModelFormatError(f"{path}: unreadable manifest (nested too deep); {_DAMAGED}") from None
    if not isinstance(manifest, dict):
        raise ModelFormatError(f"{path}: the manifest is a JSON {type(manifest).__name__}, not an object; {_DAMAGED}")
    if manifest.get("format") != FORMAT:
        raise ModelFormatError(f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}")
    version = manifest.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:  # not True, which equals 1
        raise ModelFormatError(
            f"{path}: format version {version!r} is not supported "
            f"(this newsclf reads versions {list(READABLE_VERSIONS)}); "
            "retrain the model or install the newsclf release that wrote it"
        )
    saved = manifest.get("scikit_learn_version")
    if not isinstance(saved, str):
        raise ModelFormatError(f"{path}: scikit_learn_version {saved!r} is not a version string; {_DAMAGED}")
    if saved.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise ModelFormatError(
            f"{path}: saved with scikit-learn {saved}, running {sklearn.__version__}; "
            f"install scikit-learn=={saved} to load it, or retrain"
        )
    tasks = manifest.get("tasks")
    if not isinstance(tasks, dict) or "topic" not in tasks:
        raise ModelFormatError(f"{path}: the manifest lists no topic task")
    for task, entry in tasks.items():
        _check_entry(path, f"tasks.{task}", entry)
    if TONE_APPLIES in manifest:
        _check_entry(path, TONE_APPLIES, manifest[TONE_APPLIES])
    if manifest.get("metadata") is not None and not isinstance(manifest["metadata"], dict):
        raise ModelFormatError(f"{path}: metadata is not an object; {_DAMAGED}")
    _check_code_section(path, manifest.get(CODE, {}))
    return manifest


def _check_entry(path: Path, where: str, entry: Any) -> None:
    """One file entry of the manifest: a plain file name of the folder, its SHA-256 and its labels."""
    if not isinstance(entry, dict):
        raise ModelFormatError(f"{path}: {where} is not an object with file, sha256 and labels; {_DAMAGED}")
    for key in ("file", "sha256", "labels"):
        if key not in entry:
            raise ModelFormatError(f"{path}: {where} has no {key}; {_DAMAGED}")
    name = entry["file"]
    if not isinstance(name, str) or name in ("", ".", "..") or any(sign in name for sign in _NOT_IN_A_NAME + "/"):
        raise ModelFormatError(f"{path}: {where}.file {name!r} is not a plain file name inside the folder; {_DAMAGED}")
    if not _is_sha256(entry["sha256"]):
        raise ModelFormatError(f"{path}: {where}.sha256 is not 64 lowercase hex characters; {_DAMAGED}")
    if not isinstance(entry["labels"], list) or not all(isinstance(label, str) for label in entry["labels"]):
        raise ModelFormatError(f"{path}: {where}.labels is not a list of strings; {_DAMAGED}")


def _check_code_section(path: Path, code: Any) -> None:
    """The ``code`` section: relative POSIX paths that stay inside the logged model's code/ folder, with SHA-256s."""
    if not isinstance(code, dict):
        raise ModelFormatError(f"{path}: {CODE} is not an object of file paths and SHA-256s; {_DAMAGED}")
    for name, digest in code.items():
        if any(part in ("", ".", "..") for part in name.split("/")) or any(sign in name for sign in _NOT_IN_A_NAME):
            raise ModelFormatError(f"{path}: {CODE} entry {name!r} is not a path inside the code/ folder; {_DAMAGED}")
        if not _is_sha256(digest):
            raise ModelFormatError(f"{path}: {CODE} entry {name!r} has no SHA-256 (64 lowercase hex); {_DAMAGED}")


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None
