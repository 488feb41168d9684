import numpy as np
import pytest

from train.evaluate import class_weights, confusion_figure, report_text, task_metrics

LABELS = ["diplomatic", "military"]
Y_TRUE = ["military", "military", "diplomatic", "diplomatic"]
PROBA = np.array([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1], [0.7, 0.3]])


def test_metrics_match_hand_computed_values():
    metrics = task_metrics(Y_TRUE, PROBA, LABELS)
    # predictions: military, diplomatic, diplomatic, diplomatic
    assert metrics["accuracy"] == pytest.approx(0.75)
    # diplomatic: P=2/3 R=1 F1=0.8; military: P=1 R=0.5 F1=2/3
    assert metrics["f1_diplomatic"] == pytest.approx(0.8)
    assert metrics["f1_military"] == pytest.approx(2 / 3)
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
