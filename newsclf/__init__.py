"""newsclf: the served model, topic and military/diplomatic tone of news articles.

Everything a saved model needs to load and predict, and nothing of training: this package is
what a logged MLflow model bundles, so it imports only scikit-learn, NumPy, SciPy and joblib
(MLflow and pandas only where those paths are used)::

    from newsclf import load_model
    model = load_model("models:/news-classifier@champion")   # or "runs:/...", or a model folder
    model.predict("Troops shelled the city as envoys met in Doha.")   # one dict; a list in gives a list
    model.explain(article)           # terms that pushed the topic and the tone, with weights
    model.paragraph_tones(article)   # the tone of each paragraph after cleaning
"""

from typing import Any

from newsclf.errors import ModelFormatError, NewsclfError

__all__ = ["ModelFormatError", "NewsClassifier", "NewsclfError", "load_model"]

_HOMES = {"load_model": "newsclf.loading", "NewsClassifier": "newsclf.model"}


def __getattr__(name: str) -> Any:
    # Imported when first asked for: scikit-learn takes a second or two to import, which `newsclf --help`
    # and every command that fails on its arguments would otherwise wait for.
    if name not in _HOMES:
        raise AttributeError(f"module 'newsclf' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
