"""The named steps of a task pipeline (``clean`` -> ``tfidf`` -> ``classifier``), reached one way everywhere."""

from __future__ import annotations

from typing import Any

from sklearn.pipeline import Pipeline

CLEAN, TFIDF, CLASSIFIER = "clean", "tfidf", "classifier"


def cleaner_of(pipeline: Pipeline) -> Any:
    """The article cleaner of a task or feature pipeline."""
    return pipeline.named_steps[CLEAN]


def tfidf_of(pipeline: Pipeline) -> Any:
    """The TF-IDF FeatureUnion of a task or feature pipeline."""
    return pipeline.named_steps[TFIDF]


def classifier_of(pipeline: Pipeline) -> Any:
    """The final classifier of a task pipeline."""
    return pipeline.named_steps[CLASSIFIER]


def features_of(pipeline: Pipeline) -> Pipeline:
    """Every step but the classifier: raw text in, the classifier's input matrix out."""
    return pipeline[:-1]
