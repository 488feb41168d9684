"""The one definition of every score: training, promotion, evaluation, tuning and the bench all use these.

Macro-F1 is always taken over an explicit label set, the *task labels*: the labels the model
knows, followed by any true label it never saw (those count as mistakes). A label in the set
that is neither true nor predicted for any article scores F1 = 0, as scikit-learn's
``f1_score(labels=..., zero_division=0)`` gives. The vectorised scores over confusion counts
(bootstrap resamples, permutation tests) average over the same set: every row of the matrix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, f1_score, log_loss

if TYPE_CHECKING:
    pass


def task_labels(known: Iterable[str], y_true: Iterable[str | None]) -> list[str]:
    """The label set a task is scored over: ``known`` (the model's labels, in order), then the
    true labels outside it, sorted. None (an article without a label for the task) is skipped."""
    labels = list(dict.fromkeys(str(label) for label in known))
    unseen = {str(label) for label in y_true if label is not None} - set(labels)
    return labels + sorted(unseen)


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean F1 over ``labels`` (see the module docstring for the label set)."""
    return float(f1_score(list(y_true), list(y_pred), labels=list(labels), average="macro", zero_division=0))


# What MLflow refuses in a metric name (e.g. the "&" of a label); such characters become "_".
_NOT_IN_METRIC_NAMES = re.compile(r"[^\w.\- :]")


def metric_name(*groups: str) -> str:
    """The MLflow name of a number, its groups joined by "/" (``validation/topic/macro_f1``): the UI
    shows a section per group. Characters MLflow refuses in a name become "_"."""
    return "/".join(_NOT_IN_METRIC_NAMES.sub("_", group) for group in groups)


# The number promotion and searches rank by, as the run logs it (see selection_score).
VALIDATION_SCORE = metric_name("validation", "score")


def grouped(metrics: Mapping[str, float], *groups: str) -> dict[str, float]:
    """``metrics`` renamed into ``groups``: ``{"macro_f1": x}`` -> ``{"validation/topic/macro_f1": x}``."""
    return {metric_name(*groups) + "/" + name: value for name, value in metrics.items()}


def selection_score(task_scores: Mapping[str, float]) -> float:
    """The number candidates and champions are ranked by: macro-F1 averaged over the tasks."""
    return float(np.mean(list(task_scores.values())))


def validation_score(metrics: Mapping[str, float], tasks: Iterable[str]) -> float:
    """:func:`selection_score` of the ``validation/<task>/macro_f1`` numbers in a run's ``metrics``."""
    return selection_score(
        {task: metrics[name] for task in tasks if (name := metric_name("validation", task, "macro_f1")) in metrics}
    )


def task_metrics(y_true: Sequence[str], proba: np.ndarray, model_labels: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro-F1, per-class F1 (``f1/<label>``) and log loss; ``model_labels`` orders the
    columns of ``proba``."""
    model_labels = list(model_labels)
    y_pred = [model_labels[i] for i in proba.argmax(axis=1)]
    labels = task_labels(model_labels, y_true)
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    metrics = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, labels),
        "log_loss": probability_log_loss(y_true, proba, model_labels),
    }
    metrics.update({metric_name("f1", label): score for label, score in zip(labels, per_class)})
    return {name: float(value) for name, value in metrics.items()}


def probability_log_loss(y_true: Sequence[str], proba: np.ndarray, model_labels: Sequence[str]) -> float:
    """Log loss of ``proba`` (columns in ``model_labels`` order), its rows renormalised in float64 first:
    probabilities computed from float32 TF-IDF features (as calibrated ones are) sum to 1 only within
    ~1e-7, beyond the tolerance at which scikit-learn's log_loss warns."""
    proba = np.asarray(proba, dtype=np.float64)
    return float(log_loss(list(y_true), proba / proba.sum(axis=1, keepdims=True), labels=list(model_labels)))


def report_text(y_true: Sequence[str], proba: np.ndarray, labels: Sequence[str]) -> str:
    """scikit-learn's classification report for the most probable labels."""
    labels = list(labels)
    y_pred = [labels[i] for i in proba.argmax(axis=1)]
    return classification_report(y_true, y_pred, labels=labels, digits=3, zero_division=0)


def confusion_counts(true_index: np.ndarray, pred_index: np.ndarray, n_labels: int) -> np.ndarray:
    """Confusion counts (rows true, columns predicted) along the last axis of label-index arrays.

    ``true_index`` and ``pred_index`` broadcast to a shape ``(..., n)``, e.g. one row per
    bootstrap resample; items whose true index is -1 are not counted. The result has shape
    ``(..., n_labels, n_labels)``. One ``bincount`` per batch instead of one scikit-learn call per
    resample keeps 1000 resamples of 10,000 items well under a second.
    """
    true_index, pred_index = np.broadcast_arrays(np.asarray(true_index), np.asarray(pred_index))
    cells = n_labels * n_labels
    codes = np.where(true_index >= 0, true_index * n_labels + pred_index, cells)  # `cells` = not counted
    rows = codes.reshape(-1, codes.shape[-1])
    offsets = np.arange(len(rows))[:, None] * (cells + 1)
    counts = np.bincount((rows + offsets).ravel(), minlength=len(rows) * (cells + 1)).reshape(len(rows), cells + 1)
    return counts[:, :cells].reshape(*codes.shape[:-1], n_labels, n_labels)


def confusion_scores(confusions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and macro-F1 of ``(..., K, K)`` confusion counts.

    Macro-F1 averages over all K labels, as :func:`macro_f1` does over its label set; empty
    matrices give NaN accuracy.
    """
    hits = np.diagonal(confusions, axis1=-2, axis2=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = hits.sum(axis=-1) / confusions.sum(axis=(-2, -1))
    return accuracy, class_f1(confusions).mean(axis=-1)


def class_f1(confusions: np.ndarray) -> np.ndarray:
    """F1 of each label of ``(..., K, K)`` confusion counts; 0 for a label neither true nor predicted."""
    hits = np.diagonal(confusions, axis1=-2, axis2=-1)
    return 2 * hits / np.maximum(confusions.sum(axis=-1) + confusions.sum(axis=-2), 1)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray],
    strata: Sequence[np.ndarray],
    resamples: int,
    seed: int,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of ``statistic(positions)``, reproducible for a ``seed``.

    ``strata`` are arrays of item positions, each resampled on its own so its size stays fixed
    (e.g. articles with and without a tone: no resample loses the tone task). A stratum of one
    item cannot vary and is kept as it is; with nothing to resample the interval is NaN.
    ``statistic`` takes positions of shape ``(..., n)`` (resamples along the last axis) and returns
    one value or a vector of values per resample.
    """
    from scipy.stats import bootstrap

    varying = [np.asarray(stratum) for stratum in strata if len(stratum) >= 2]
    fixed = np.concatenate(
        [np.asarray(stratum, dtype=np.int64) for stratum in strata if len(stratum) < 2] + [np.empty(0, np.int64)]
    )
    if not varying:
        nothing = np.full(np.shape(statistic(fixed)), np.nan)
        return nothing, nothing

    def joined(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        kept = np.broadcast_to(fixed, samples[0].shape[:-1] + fixed.shape)
        return statistic(np.concatenate([*samples, kept], axis=-1))

    batch = resample_batch(resamples, sum(len(stratum) for stratum in varying))
    result = bootstrap(
        tuple(varying),
        joined,
        vectorized=True,
        n_resamples=resamples,
        batch=batch,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def resample_batch(resamples: int, n_items: int) -> int:
    """Resamples per vectorised call: about a million positions (~10 MB), whatever the number of items."""
    return max(1, min(resamples, 1_000_000 // max(n_items, 1)))


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Equal-width confidence bins: item count, mean confidence and accuracy of the non-empty bins.

    Binned as ``sklearn.calibration.calibration_curve(strategy="uniform")`` does, plus the counts
    the expected calibration error needs (calibration_curve does not return them).
    """
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_of = np.searchsorted(edges[1:-1], confidence)
    counts = np.bincount(bin_of, minlength=n_bins)
    confidence_sums = np.bincount(bin_of, weights=confidence, minlength=n_bins)
    correct_sums = np.bincount(bin_of, weights=correct, minlength=n_bins)
    return [
        {
            "low": float(edges[b]),
            "high": float(edges[b + 1]),
            "count": int(counts[b]),
            "confidence": float(confidence_sums[b] / counts[b]),
            "accuracy": float(correct_sums[b] / counts[b]),
        }
        for b in range(n_bins)
        if counts[b]
    ]


def expected_calibration_error(bins: list[dict[str, float]]) -> float:
    """Count-weighted mean gap between accuracy and confidence over :func:`calibration_bins`."""
    total = sum(b["count"] for b in bins)
    return (
        float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / total) if total else float("nan")
    )


def ece_if_calibrated(confidence: np.ndarray, n_bins: int = 10, draws: int = 2000, seed: int = 0) -> float:
    """The median expected calibration error that a perfectly calibrated model with these confidences
    would show on this many items, each right with probability its confidence: the sampling noise
    floor of :func:`expected_calibration_error`. On a few hundred items it is several points, so a
    measured ECE near it is no evidence of miscalibration."""
    confidence = np.asarray(confidence, dtype=float)
    if not len(confidence):
        return float("nan")
    bin_of = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], confidence)
    in_bin = np.zeros((len(confidence), n_bins))
    in_bin[np.arange(len(confidence)), bin_of] = 1.0
    expected = confidence @ in_bin
    rng = np.random.default_rng(seed)
    # Draws in blocks of about a million items: all at once would hold draws x items booleans.
    block = max(1, 1_000_000 // len(confidence))
    gaps = [
        np.abs((rng.random((min(block, draws - start), len(confidence))) < confidence) @ in_bin - expected).sum(axis=1)
        for start in range(0, draws, block)
    ]
    return float(np.median(np.concatenate(gaps)) / len(confidence))


def reliability(proba: np.ndarray, y_true: Sequence[str], labels: Sequence[str], n_bins: int = 10) -> list[dict]:
    """:func:`newsclf.train.evaluation.metrics.calibration_bins` of the top-label confidence of ``proba``."""
    labels = list(labels)
    correct = np.array([labels[i] == truth for i, truth in zip(proba.argmax(axis=1), y_true)])
    return calibration_bins(proba.max(axis=1), correct, n_bins)
