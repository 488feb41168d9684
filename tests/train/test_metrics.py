import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, f1_score

from newsclf.explain import class_weights
from newsclf.train.evaluation.figures import confusion_figure, prediction_confusion_figure, reliability_figure
from newsclf.train.evaluation.metrics import (
    bootstrap_interval,
    calibration_bins,
    confusion_counts,
    confusion_scores,
    ece_if_calibrated,
    expected_calibration_error,
    grouped,
    metric_name,
    report_text,
    task_metrics,
    validation_score,
)

LABELS = ["diplomatic", "military"]
Y_TRUE = ["military", "military", "diplomatic", "diplomatic"]
PROBA = np.array([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1], [0.7, 0.3]])


def test_metrics_match_hand_computed_values():
    metrics = task_metrics(Y_TRUE, PROBA, LABELS)
    # predictions: military, diplomatic, diplomatic, diplomatic
    assert metrics["accuracy"] == pytest.approx(0.75)
    # diplomatic: P=2/3 R=1 F1=0.8; military: P=1 R=0.5 F1=2/3
    assert metrics["f1/diplomatic"] == pytest.approx(0.8)
    assert metrics["f1/military"] == pytest.approx(2 / 3)
    assert metrics["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert metrics["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.4, 0.9, 0.7])))


def test_report_and_figure_name_every_label(tmp_path):
    assert all(label in report_text(Y_TRUE, PROBA, LABELS) for label in LABELS)
    figure = confusion_figure(Y_TRUE, PROBA, LABELS, "tone")
    figure.savefig(tmp_path / "cm.png")
    assert (tmp_path / "cm.png").stat().st_size > 1000


def test_binary_weights_are_mirrored():
    class Fake:
        named_steps = {"classifier": type("C", (), {"coef_": np.array([[1.0, -2.0]])})()}

    assert class_weights(Fake()).tolist() == [[-1.0, 2.0], [1.0, -2.0]]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40))
def test_confusion_scores_agree_with_scikit_learn(pairs):
    true, pred = (np.array(column) for column in zip(*pairs))
    accuracy, macro_f1 = confusion_scores(confusion_counts(true, pred, 4))
    assert accuracy == pytest.approx(accuracy_score(true, pred))
    assert macro_f1 == pytest.approx(f1_score(true, pred, labels=range(4), average="macro", zero_division=0))


def test_confusion_counts_batch_over_resamples_and_skip_unlabelled_items():
    true, pred = np.array([0, 1, -1, 1]), np.array([0, 0, 1, 1])
    positions = np.array([[0, 1, 2, 3], [3, 3, 3, 3], [2, 2, 2, 2]])
    counts = confusion_counts(true[positions], pred[positions], 2)
    assert counts.shape == (3, 2, 2)
    assert counts[0].tolist() == [[1, 0], [1, 1]]  # the item without a label is not counted
    assert counts[1].tolist() == [[0, 0], [0, 4]]
    assert counts[2].sum() == 0 and np.isnan(confusion_scores(counts[2])[0])


def test_calibration_bins_match_scikit_learn_and_ece_is_hand_computed():
    confidence = np.array([0.85, 0.62, 0.95, 0.75, 0.65])
    correct = np.array([1, 0, 1, 1, 0])
    bins = calibration_bins(confidence, correct)
    accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=10, pos_label=1)
    assert [b["accuracy"] for b in bins] == pytest.approx(accuracy.tolist())
    assert [b["confidence"] for b in bins] == pytest.approx(mean_confidence.tolist())
    assert [b["count"] for b in bins] == [2, 1, 1, 1]
    # bins 0.6-0.7: 2 wrong at mean 0.635; 0.7-0.8: right at 0.75; 0.8-0.9: right at 0.85; 0.9-1: right at 0.95
    assert expected_calibration_error(bins) == pytest.approx((2 * 0.635 + 0.25 + 0.15 + 0.05) / 5)


def test_bootstrap_interval_is_reproducible_contains_the_estimate_and_keeps_strata_sizes():
    rng = np.random.default_rng(1)
    values = rng.normal(size=200)

    def mean(positions):
        return values[positions].mean(axis=-1)

    first = bootstrap_interval(mean, [np.arange(200)], resamples=500, seed=7)
    assert first == bootstrap_interval(mean, [np.arange(200)], resamples=500, seed=7)
    assert first != bootstrap_interval(mean, [np.arange(200)], resamples=500, seed=8)
    assert first[0] < values.mean() < first[1]
    # Each stratum is resampled on its own: every resample holds exactly 150 of the first stratum.

    def in_first(positions):
        return (positions < 150).sum(axis=-1).astype(float)

    low, high = bootstrap_interval(in_first, [np.arange(150), np.arange(150, 200)], resamples=200, seed=0)
    assert low == high == 150
    assert np.isnan(bootstrap_interval(mean, [np.array([3])], resamples=200, seed=0)[0])


def test_normalised_confusion_and_reliability_figures_are_written(tmp_path):
    figure = prediction_confusion_figure(["a", "b", "c"], ["a", "a", "b"], ["a", "b", "c", "d"], "t", normalize="true")
    figure.savefig(tmp_path / "cm.png")
    reliability_figure(calibration_bins(np.array([0.9, 0.6, 0.7]), np.array([1, 0, 1])), "t").savefig(
        tmp_path / "rel.png"
    )
    assert (tmp_path / "cm.png").stat().st_size > 1000 and (tmp_path / "rel.png").stat().st_size > 1000


def test_empty_confusion_cells_are_blank_and_the_reliability_legend_covers_no_data():
    figure = prediction_confusion_figure(["a", "b", "b"], ["a", "a", "b"], ["a", "b", "c"], "t")
    cells = [text.get_text() for text in figure.axes[0].texts]
    assert cells == ["1", "", "", "1", "1", "", "", "", ""]
    figure = reliability_figure(calibration_bins(np.array([0.15, 0.95, 0.9]), np.array([1, 1, 0])), "t")
    figure.canvas.draw()
    (legend,) = figure.legends
    legend_box = legend.get_window_extent()
    assert not any(legend_box.overlaps(axes.get_window_extent()) for axes in figure.axes)


def test_metric_names_group_by_slash_and_keep_labels_mlflow_would_refuse_in_one_group():
    assert metric_name("validation", "topic", "macro_f1") == "validation/topic/macro_f1"
    # "Sci/Tech" must not open a group of its own; "&" and "(" are refused by MLflow.
    assert metric_name("f1", "Sci/Tech & more (misc)") == "f1/Sci_Tech _ more _misc_"
    assert grouped({"macro_f1": 0.5}, "test", "tone") == {"test/tone/macro_f1": 0.5}
    assert validation_score(
        {"validation/topic/macro_f1": 0.4, "validation/tone/macro_f1": 0.8}, ["topic", "tone"]
    ) == (pytest.approx(0.6))


def test_the_ece_of_a_perfectly_calibrated_model_is_its_sampling_noise_and_shrinks_with_more_items():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.5, 1.0, 101)
    # The same median, drawn the slow way: items right with probability their confidence.
    drawn = [
        expected_calibration_error(calibration_bins(confidence, rng.random(101) < confidence)) for _ in range(400)
    ]
    assert ece_if_calibrated(confidence) == pytest.approx(np.median(drawn), abs=0.005)
    assert ece_if_calibrated(confidence) > 0.05 > 0.015 > ece_if_calibrated(rng.uniform(0.5, 1.0, 5000))
