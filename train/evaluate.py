"""Scores and report artifacts for one task's predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    labels = list(labels)
    return prediction_confusion_figure(y_true, [labels[i] for i in proba.argmax(axis=1)], labels, title)


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


def prediction_confusion_figure(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], title: str, normalize: str | None = None
):
    """Like :func:`confusion_figure`, from predicted labels; ``normalize="true"`` divides each row by its support."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = list(labels)
    size = 3 + 0.6 * len(labels)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, normalize=normalize, values_format=".2f" if normalize else "d",
        ax=axes, xticks_rotation=45, colorbar=False, cmap="Blues",
    )
    axes.set_title(title)
    figure.tight_layout()
    return figure


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

    Macro-F1 averages over the labels that occur in the truth or the predictions, as scikit-learn's
    ``f1_score(average="macro")`` does without ``labels``; empty matrices give NaN.
    """
    hits = np.diagonal(confusions, axis1=-2, axis2=-1)
    true_counts, predicted_counts = confusions.sum(axis=-1), confusions.sum(axis=-2)
    present = (true_counts + predicted_counts) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = hits.sum(axis=-1) / true_counts.sum(axis=-1)
        macro_f1 = class_f1(confusions).sum(axis=-1) / present.sum(axis=-1)
    return accuracy, macro_f1


def class_f1(confusions: np.ndarray) -> np.ndarray:
    """F1 of each label of ``(..., K, K)`` confusion counts; 0 for a label neither true nor predicted."""
    hits = np.diagonal(confusions, axis1=-2, axis2=-1)
    return 2 * hits / np.maximum(confusions.sum(axis=-1) + confusions.sum(axis=-2), 1)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], np.ndarray], strata: Sequence[np.ndarray], resamples: int, seed: int, level: float = 0.95
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
    fixed = np.concatenate([np.asarray(stratum, dtype=np.int64) for stratum in strata if len(stratum) < 2] + [np.empty(0, np.int64)])
    if not varying:
        nothing = np.full(np.shape(statistic(fixed)), np.nan)
        return nothing, nothing

    def joined(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        kept = np.broadcast_to(fixed, samples[0].shape[:-1] + fixed.shape)
        return statistic(np.concatenate([*samples, kept], axis=-1))

    batch = resample_batch(resamples, sum(len(stratum) for stratum in varying))
    result = bootstrap(
        tuple(varying), joined, vectorized=True, n_resamples=resamples, batch=batch,
        confidence_level=level, method="percentile", rng=np.random.default_rng(seed),
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
        {"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(counts[b]),
         "confidence": float(confidence_sums[b] / counts[b]), "accuracy": float(correct_sums[b] / counts[b])}
        for b in range(n_bins) if counts[b]
    ]


def expected_calibration_error(bins: list[dict[str, float]]) -> float:
    """Count-weighted mean gap between accuracy and confidence over :func:`calibration_bins`."""
    total = sum(b["count"] for b in bins)
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / total) if total else float("nan")


def reliability_figure(bins: list[dict[str, float]], title: str):
    """Reliability diagram of top-label confidence: accuracy per bin against the diagonal, counts below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (curve, histogram) = plt.subplots(2, 1, figsize=(5.5, 6.5), height_ratios=(3, 1), sharex=True)
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    curve.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    curve.bar(centres, [b["accuracy"] for b in bins], width=width * 0.9, alpha=0.35, color="tab:blue", label="accuracy per bin")
    curve.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color="tab:blue", label="model")
    curve.set(ylabel="accuracy", ylim=(0, 1), title=f"{title}\nECE {expected_calibration_error(bins):.3f}")
    curve.legend(loc="upper left")
    histogram.bar(centres, [b["count"] for b in bins], width=width * 0.9, color="tab:grey")
    histogram.set(xlabel="confidence of the predicted label", ylabel="items", xlim=(0, 1))
    figure.tight_layout()
    return figure


def driving_terms(pipeline: Pipeline, texts: Sequence[str], classes: Sequence[int], k: int = 5) -> list[list[tuple[str, float]]]:
    """For each text, the ``k`` features that pushed hardest towards class index ``classes[i]``.

    A feature's push is its TF-IDF value in the text times its weight for that class (see
    :func:`class_weights`); only positive pushes are listed.
    """
    if not len(texts):
        return []
    features = pipeline[:-1].transform(list(texts)).tocsr()
    weights = class_weights(pipeline)
    names = pipeline.named_steps["tfidf"].get_feature_names_out()
    terms = []
    for row, label in enumerate(classes):
        start, end = features.indptr[row], features.indptr[row + 1]
        columns = features.indices[start:end]
        push = features.data[start:end] * weights[label, columns]
        order = np.argsort(push)[::-1][:k]
        terms.append([(str(names[columns[j]]), float(push[j])) for j in order if push[j] > 0])
    return terms
