"""The figures training and evaluation log: confusion matrices and reliability diagrams (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from newsclf.train.evaluation.metrics import expected_calibration_error


def confusion_figure(y_true: Sequence[str], proba: np.ndarray, labels: Sequence[str], title: str):
    """A matplotlib Figure of the confusion matrix (counts), labels in model order."""
    labels = list(labels)
    return prediction_confusion_figure(y_true, [labels[i] for i in proba.argmax(axis=1)], labels, title)


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
    display = ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=labels,
        normalize=normalize,
        values_format=".2f" if normalize else "d",
        ax=axes,
        xticks_rotation=45,
        colorbar=False,
        cmap="Blues",
    )
    # Blank empty cells, so the few confusions that happen stand out from a grid of zeros.
    for text, value in zip(display.text_.ravel(), display.confusion_matrix.ravel()):
        if value == 0:
            text.set_text("")
    axes.set_title(title)
    figure.tight_layout()
    return figure


def reliability_figure(bins: list[dict[str, float]], title: str, before: list[dict[str, float]] | None = None):
    """Reliability diagram of top-label confidence: accuracy per bin against the diagonal, counts below.

    ``before`` (the bins without calibration) adds that curve and its ECE, for a before/after view."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (curve, histogram) = plt.subplots(2, 1, figsize=(5.5, 6.5), height_ratios=(3, 1), sharex=True)
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    curve.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    curve.bar(
        centres,
        [b["accuracy"] for b in bins],
        width=width * 0.9,
        alpha=0.35,
        color="tab:blue",
        label="accuracy per bin",
    )
    curve.plot(
        [b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color="tab:blue", label="model"
    )
    ece = f"ECE {expected_calibration_error(bins):.3f}"
    if before:
        curve.plot(
            [b["confidence"] for b in before],
            [b["accuracy"] for b in before],
            marker="s",
            linestyle=":",
            color="tab:orange",
            label="before calibration",
        )
        ece += f" (before calibration {expected_calibration_error(before):.3f})"
    curve.set(ylabel="accuracy", ylim=(0, 1), title=f"{title}\n{ece}")
    histogram.bar(centres, [b["count"] for b in bins], width=width * 0.9, color="tab:grey")
    histogram.set(xlabel="confidence of the predicted label", ylabel="items", xlim=(0, 1))
    # Under both plots, where no bin or point can sit beneath it.
    figure.legend(*curve.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize="small", frameon=False)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return figure
