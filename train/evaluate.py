"""Scores and report artifacts for one task's predictions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, f1_score, log_loss
from sklearn.pipeline import Pipeline


def task_metrics(y_true: Sequence[str], proba: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro-F1, per-class F1 and log loss; ``labels`` orders the columns of ``proba``."""
    labels = list(labels)
    y_pred = [labels[i] for i in proba.argmax(axis=1)]
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    metrics = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "log_loss": log_loss(y_true, proba, labels=labels),
    }
    metrics.update({f"f1_{label}": score for label, score in zip(labels, per_class)})
    return {name: float(value) for name, value in metrics.items()}


def report_text(y_true: Sequence[str], proba: np.ndarray, labels: Sequence[str]) -> str:
    """scikit-learn's classification report for the most probable labels."""
    labels = list(labels)
    y_pred = [labels[i] for i in proba.argmax(axis=1)]
    return classification_report(y_true, y_pred, labels=labels, digits=3, zero_division=0)


def confusion_figure(y_true: Sequence[str], proba: np.ndarray, labels: Sequence[str], title: str):
    """A matplotlib Figure of the confusion matrix (counts), labels in model order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = list(labels)
    y_pred = [labels[i] for i in proba.argmax(axis=1)]
    size = 3 + 0.6 * len(labels)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, ax=axes, xticks_rotation=45, colorbar=False, cmap="Blues"
    )
    axes.set_title(title)
    figure.tight_layout()
    return figure


def top_terms(pipeline: Pipeline, k: int = 25) -> dict[str, list[tuple[str, float]]]:
    """The ``k`` features with the largest weight towards each class of a fitted pipeline."""
    names = pipeline.named_steps["tfidf"].get_feature_names_out()
    weights = class_weights(pipeline)
    labels = [str(label) for label in pipeline.classes_]
    return {
        label: [(str(names[j]), float(row[j])) for j in np.argsort(row)[::-1][:k]]
        for label, row in zip(labels, weights)
    }


def class_weights(pipeline: Pipeline) -> np.ndarray:
    """A ``(n_classes, n_features)`` weight matrix for the final linear classifier.

    Binary models store one row (for the second class); it is mirrored so every class has one.
    Calibrated classifiers average the weights of their cross-validated estimators.
    """
    classifier = pipeline.named_steps["classifier"]
    if hasattr(classifier, "calibrated_classifiers_"):
        coef = np.mean([c.estimator.coef_ for c in classifier.calibrated_classifiers_], axis=0)
    else:
        coef = classifier.coef_
    coef = np.asarray(coef.toarray() if hasattr(coef, "toarray") else coef)
    return np.vstack([-coef[0], coef[0]]) if coef.shape[0] == 1 else coef
