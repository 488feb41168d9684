"""The logged MLflow model and the registry: log a NewsClassifier with its served code, register it,
and move the champion alias only when the new version is significantly better."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import joblib
import sklearn

import newsclf
from newsclf.folder import ARTIFACT_KEY
from newsclf.model import NewsClassifier
from newsclf.pyfunc import PARAMS
from train.config import ExperimentConfig
from train.data import Articles
from train.metrics import model_scores, selection_score

# Name of the logged model inside a training run.
MODEL_ARTIFACT = "model"
# The served package: everything a logged model runs, bundled whole (a test checks it imports
# nothing of training), under its own name so it cannot shadow a user's train or features module.
SERVED_PACKAGE = Path(newsclf.__file__).resolve().parent
# The models-from-code entry file MLflow executes to build the pyfunc model.
_ENTRY = SERVED_PACKAGE / "pyfunc_model.py"


def log_model(model: NewsClassifier, example_texts: list[str]):
    """Log ``model`` as the pyfunc model ``model`` of the active run, with its code; returns MLflow's ModelInfo."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    example = pd.DataFrame({"text": example_texts})
    signature = infer_signature(example, model.predict_frame(example_texts), params=PARAMS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(Path(tmp) / ARTIFACT_KEY)
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(_ENTRY),
            artifacts={ARTIFACT_KEY: str(folder)},
            code_paths=[str(bundle_served_code(Path(tmp) / "code"))],
            signature=signature,
            input_example=example,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"joblib=={joblib.__version__}", "pandas"],
        )


def bundle_served_code(target: Path) -> Path:
    """A copy of the served package's source in ``target``; returns the package folder."""
    destination = target / SERVED_PACKAGE.name
    shutil.copytree(SERVED_PACKAGE, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return destination


def register(
    model_uri: str, model: NewsClassifier, validation: Articles, config: ExperimentConfig
) -> tuple[str, bool]:
    """Register a new version; move the champion alias to it only if it is significantly better
    on the validation articles (train.comparison; the first version always becomes champion)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from newsclf.loading import load_model
    from train.comparison import BETTER, compare_models

    name, alias = config.tracking.registered_model, config.tracking.champion_alias
    client = MlflowClient()
    score = selection_score(model_scores(model, validation))
    promoted = True
    champion = _current_champion(client, name, alias)
    if champion is not None:
        comparison = compare_models(
            load_model(f"models:/{name}/{champion.version}"), model, validation, seed=config.seed
        )
        mlflow.log_metrics(comparison.flat_metrics("promotion"))
        mlflow.set_tag("promotion_verdict", comparison.verdict)
        promoted = comparison.verdict == BETTER
    mlflow.log_metric("validation_score", score)
    version = mlflow.register_model(model_uri, name).version
    try:
        client.set_model_version_tag(name, version, "validation_score", f"{score:.6f}")
        if promoted:
            client.set_registered_model_alias(name, alias, version)
    except Exception:
        client.delete_model_version(name, version)
        raise
    return str(version), promoted


def _current_champion(client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
