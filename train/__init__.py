"""newsclf training: data in, fitted, tracked and registered models out, and their evaluation.

Installed as ``newsclf.train`` (the repository keeps it in the top-level ``train/`` folder)::

    from newsclf.train import train
    result = train("experiments/default.toml", tracking_uri="sqlite:///mlflow.db", overrides={"topic.C": 5})
    result.run_id, result.model_uri   # the MLflow run, "models:/news-classifier/3"

``train`` also takes an experiment name, a dict shaped as an experiment file, or a loaded config;
``run(config, tracking_uri)`` is the same run for a config already loaded.

Rooms by role, imports pointing down only (tests/test_layout.py): ``paths``, ``progress``,
``classifiers``, ``cluster`` and ``data.sources`` at the bottom, then ``config``, ``data``,
``evaluation``, ``fit``, ``tracking``, ``jobs``, the one training run (``training``) and the
``cli`` on top.
"""

from typing import Any

__all__ = ["ExperimentConfig", "TrainResult", "load_config", "run", "train"]

_HOMES = {
    "ExperimentConfig": "newsclf.train.config",
    "load_config": "newsclf.train.config",
    "TrainResult": "newsclf.train.training",
    "run": "newsclf.train.training",
    "train": "newsclf.train.training",
}


def __getattr__(name: str) -> Any:
    # Imported when first asked for: `newsclf predict` imports this package without training anything.
    if name not in _HOMES:
        raise AttributeError(f"module 'newsclf.train' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
