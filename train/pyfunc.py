"""The MLflow pyfunc flavour of a newsclf model folder.

This module, :mod:`train.model` and what it imports are bundled with every logged model
(``code_paths``), so ``mlflow.pyfunc.load_model(uri).predict(df)`` needs only mlflow and
scikit-learn installed.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from train.model import ARTIFACT_KEY


class NewsClassifierPyfunc(mlflow.pyfunc.PythonModel):
    """Takes a DataFrame with a ``text`` column (or a list of texts); returns one row per text."""

    def load_context(self, context):
        from train.model import NewsClassifier

        self.model = NewsClassifier.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        # A DataFrame's "text" column (else its first column), a list of texts, or one text.
        return self.model.predict_frame(model_input)
