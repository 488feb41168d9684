"""The logged MLflow model and the registry: log a NewsClassifier with its served code, and register
it as a version that says whether it is complete. Moving the champion alias is newsclf.train.tracking.promotion's."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import newsclf
from newsclf.folder import ARTIFACT_KEY, code_digests, save_folder
from newsclf.model import NewsClassifier
from newsclf.pyfunc import PARAMS

# Name of the logged model inside a training run.
MODEL_ARTIFACT = "model"
# Set to "true" on a registered version once everything about it is written (see register).
COMPLETE_TAG = "newsclf.complete"
# The served package: everything a logged model runs, bundled whole (a test checks it imports
# nothing of training), under its own name so it cannot shadow a user's train or features module.
SERVED_PACKAGE = Path(newsclf.__file__).resolve().parent
# The models-from-code entry file MLflow executes to build the pyfunc model (newsclf/pyfunc_model.py).
_ENTRY_NAME = "pyfunc_model.py"


def log_model(model: NewsClassifier, example_texts: list[str]):
    """Log ``model`` as the pyfunc model ``model`` of the active run, with its code; returns MLflow's ModelInfo."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    example = pd.DataFrame({"text": example_texts})
    signature = infer_signature(example, model.predict_frame(example_texts), params=PARAMS)
    with tempfile.TemporaryDirectory() as tmp:
        code = bundle_served_code(Path(tmp) / "code")
        # The manifest lists the bundle's digests, which the entry file checks on every pyfunc load. MLflow
        # copies the bundle to the logged model's code/ as it is, and the entry file from the bundle, so
        # the entry file is byte for byte the bundle's copy, which the manifest lists too.
        folder = save_folder(
            model.pipelines, model.tone_applies, model.metadata, Path(tmp) / ARTIFACT_KEY, code_digests(code.parent)
        )
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(code / _ENTRY_NAME),
            artifacts={ARTIFACT_KEY: str(folder)},
            code_paths=[str(code)],
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
        )


def bundle_served_code(target: Path) -> Path:
    """A copy of the served package's source in ``target``; returns the package folder."""
    destination = target / SERVED_PACKAGE.name
    shutil.copytree(SERVED_PACKAGE, destination, ignore=_not_served)
    return destination


def _not_served(folder: str, names: list[str]) -> set[str]:
    """What the bundle leaves out: caches, and at the package's top the training code and command line."""
    left_out = {name for name in names if name == "__pycache__" or name.endswith(".pyc")}
    if Path(folder).resolve() == SERVED_PACKAGE:
        left_out |= set(names) & {"train", "features", "__main__.py"}
    return left_out


def register(model_uri: str, name: str, tags: dict[str, str]) -> str:
    """Register ``model_uri`` as a new version of ``name`` with ``tags``; returns the version.

    The version is created tagged ``newsclf.complete = false`` and turned ``true`` only after every
    other tag is written, so a process killed in between leaves a version that says it is
    incomplete: promotion never picks it and ``newsclf doctor`` reports it. Any other failure
    deletes the version again.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _registry_lines_unless_info():
        version = str(mlflow.register_model(model_uri, name, tags={COMPLETE_TAG: "false"}).version)
    try:
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        client.set_model_version_tag(name, version, COMPLETE_TAG, "true")
    except BaseException:
        client.delete_model_version(name, version)
        raise
    return version


def is_complete(version) -> bool:
    """Whether a registered version finished registering (versions of earlier newsclf releases, which
    had no completeness tag, count as complete when they carry their validation score)."""
    tags = version.tags or {}
    if COMPLETE_TAG in tags:
        return tags[COMPLETE_TAG] == "true"
    return "validation_score" in tags


# What the served package imports, pinned to the versions that trained the model: a fresh
# environment must get the same scikit-learn minor (the model folder refuses another), and
# unpinned pandas, numpy or scipy let pip pick releases the model never ran with.
_SERVED_LIBRARIES = ("mlflow", "scikit-learn", "joblib", "numpy", "scipy", "pandas")


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{library}=={version(library)}" for library in _SERVED_LIBRARIES]


def describe(name: str, version: str, card: str) -> None:
    """Set the version's description to its model card, and the registered model's, if it has none,
    to what it is and how to load it."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    client.update_model_version(name, version, description=card)
    if not client.get_registered_model(name).description:
        client.update_registered_model(
            name,
            description=(
                "News topic and military/diplomatic tone classifier, trained and registered by newsclf. "
                f'Load with `newsclf.load_model("models:/{name}@champion")` or `mlflow.pyfunc.load_model`; '
                "each version's description is its model card."
            ),
        )


@contextlib.contextmanager
def _registry_lines_unless_info() -> Iterator[None]:
    """MLflow prints "Successfully registered model" and "Created version" past its logger, so they
    stay when its level is above INFO (the CLI's default); this keeps them to MLflow's level."""
    from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM

    was = MLFLOW_LOGGING_STREAM.enabled
    MLFLOW_LOGGING_STREAM.enabled = was and logging.getLogger("mlflow").isEnabledFor(logging.INFO)
    try:
        yield
    finally:
        MLFLOW_LOGGING_STREAM.enabled = was
