"""The MLflow pyfunc flavour of a newsclf model folder.

The whole :mod:`newsclf` package is bundled with every logged model (``code_paths``), so
``mlflow.pyfunc.load_model(uri).predict(df)`` needs only mlflow and scikit-learn installed. The
entry file :mod:`newsclf.pyfunc_model` checks the bundle against the manifest before importing it.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from newsclf.folder import ARTIFACT_KEY

# The inference params a logged model's signature declares, with their defaults (no extra columns).
PARAMS = {"explain": 0, "paragraphs": False}


class NewsClassifierPyfunc(mlflow.pyfunc.PythonModel):
    """Takes a DataFrame with a ``text`` column (or a list of texts); returns one row per text.

    Params (``params=`` in Python, ``"params"`` in a REST request), as for
    :meth:`newsclf.model.NewsClassifier.predict_frame`: ``explain`` = k > 0 adds ``<task>_terms``,
    ``paragraphs`` = true adds ``paragraph_tones``.
    """

    def load_context(self, context):
        from newsclf.model import NewsClassifier

        self.model = NewsClassifier.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        # A DataFrame's "text" column (else its first column), a list of texts, or one text.
        settings = PARAMS | (params or {})
        return self.model.predict_frame(model_input, explain=settings["explain"], paragraphs=settings["paragraphs"])
