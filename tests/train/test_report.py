"""The evaluation report: numbers against hand-computed values, and the files a reviewer reads."""

import json

import numpy as np
import pytest

from newsclf.train.evaluation.evaluate import ReportSettings, evaluate, score_task
from newsclf.train.evaluation.report import REPORT, write_report
from tests.helpers import as_articles, corpus_slice, tiny_classifier

FAST = ReportSettings(resamples=200)
# The model knows a and b; c is a label it never saw. Predictions: a, b, b, b, a.
Y_TRUE = ["a", "a", "b", "b", "c"]
PROBA = np.array([[0.85, 0.15], [0.35, 0.65], [0.05, 0.95], [0.25, 0.75], [0.62, 0.38]])


@pytest.fixture(scope="module")
def scored():
    return score_task("topic", Y_TRUE, PROBA, ["a", "b"], FAST, training_labels=["a", "a", "a", "b"])


def test_scores_match_hand_computed_values(scored):
    m = scored.metrics
    assert m["accuracy"] == pytest.approx(3 / 5)
    # a: P 1/2 R 1/2 F1 1/2; b: P 2/3 R 1 F1 0.8; c: never predicted, F1 0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0) / 3)
    assert m["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 1 * 0) / 5)
    # Log loss only over the four articles whose label has a probability column.
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.85, 0.35, 0.95, 0.75]))) and m["log_loss_items"] == 4
    # Bins 0.6-0.7: two mistakes at mean 0.635; 0.7-0.8, 0.8-0.9, 0.9-1.0: one hit each at 0.75, 0.85, 0.95.
    assert m["ece"] == pytest.approx((2 * 0.635 + 0.25 + 0.15 + 0.05) / 5)
    # On five articles even a perfectly calibrated model shows a large ECE, from sampling alone.
    assert 0.1 < m["ece_if_calibrated"] < 0.5
    rows = {row["label"]: row for row in scored.per_class}
    assert rows["b"] == {
        "label": "b",
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
        "predicted": 3,
        "seen_in_training": True,
    }
    assert rows["c"]["support"] == 1 and rows["c"]["predicted"] == 0 and not rows["c"]["seen_in_training"]
    assert scored.unseen == {"c": 1} and scored.labels == ["a", "b", "c"]


def test_baselines_learn_the_training_label_distribution(scored):
    majority = scored.baselines["majority"]
    # Always "a" (3 of 4 training labels): right on 2 of 5; F1 a = 2*2/(2*2+3) = 4/7, b and c 0.
    assert majority["accuracy"] == pytest.approx(2 / 5)
    assert majority["macro_f1"] == pytest.approx(4 / 7 / 3)
    assert majority["weighted_f1"] == pytest.approx(2 * 4 / 7 / 5)
    assert majority["log_loss"] == pytest.approx(-np.mean(np.log([0.75, 0.75, 0.25, 0.25])))
    stratified = scored.baselines["stratified"]
    assert stratified["log_loss"] is None and 0 <= stratified["accuracy"] <= 1


def test_the_stratified_baseline_is_the_mean_of_many_draws_not_one_lucky_one():
    from sklearn.dummy import DummyClassifier
    from sklearn.metrics import accuracy_score, f1_score

    from newsclf.train.evaluation.evaluate import STRATIFIED_DRAWS, _baselines

    y_true = ["a"] * 100 + ["b"] * 100 + ["c"] * 3  # "c" never seen in training
    # A random guess in 50/50 shares is right half the time on a and b; one draw is off by ~0.035.
    stratified = _baselines(y_true, ["a", "b"], ["a", "b", "c"], seed=0)["stratified"]
    assert stratified["accuracy"] == pytest.approx(0.5 * 200 / 203, abs=0.02)
    assert stratified == _baselines(y_true, ["a", "b"], ["a", "b", "c"], seed=0)["stratified"]
    draws = [
        DummyClassifier(strategy="stratified", random_state=seed).fit([[0]] * 2, ["a", "b"]).predict([[0]] * 203)
        for seed in range(STRATIFIED_DRAWS)
    ]
    for name, score in (
        ("accuracy", accuracy_score),
        ("macro_f1", lambda t, p: f1_score(t, p, labels=["a", "b", "c"], average="macro", zero_division=0)),
        ("weighted_f1", lambda t, p: f1_score(t, p, average="weighted", zero_division=0)),
    ):
        assert stratified[name] == pytest.approx(np.mean([score(y_true, draw) for draw in draws]), rel=1e-12), name


def test_intervals_contain_the_estimate_and_repeat_with_the_seed(scored):
    m = scored.metrics
    for name in ("accuracy", "macro_f1"):
        assert m[f"{name}_ci_low"] <= m[name] <= m[f"{name}_ci_high"] and m[f"{name}_ci_low"] < m[f"{name}_ci_high"]
    again = score_task("topic", Y_TRUE, PROBA, ["a", "b"], FAST).metrics
    assert again["accuracy_ci_low"] == m["accuracy_ci_low"] and again["macro_f1_ci_high"] == m["macro_f1_ci_high"]
    other_seed = score_task(
        "topic", Y_TRUE * 20, np.tile(PROBA, (20, 1)), ["a", "b"], ReportSettings(resamples=200, seed=1)
    ).metrics
    same_seed = score_task("topic", Y_TRUE * 20, np.tile(PROBA, (20, 1)), ["a", "b"], FAST).metrics
    assert (other_seed["accuracy_ci_low"], other_seed["accuracy_ci_high"]) != (
        same_seed["accuracy_ci_low"],
        same_seed["accuracy_ci_high"],
    )


def _held_out(per_topic_from: int, per_topic_to: int, topics=None) -> list[dict]:
    """Corpus items ``per_topic_from``..``per_topic_to`` of every topic: not in the tiny model's training slice."""
    return [
        item
        for item in corpus_slice(per_topic_to)
        if item not in corpus_slice(per_topic_from) and (topics is None or item["topic"] in topics)
    ]


def test_report_folder_holds_every_file_and_reads_on_its_own(tiny_model, tmp_path):
    items = _held_out(6, 9)
    evaluation = evaluate(tiny_model, as_articles(items), FAST)
    written = write_report(evaluation, tmp_path)
    names = {path.name for path in written}
    for task in ("topic", "tone"):
        assert {f"{task}_confusion_counts.png", f"{task}_confusion_normalised.png", f"{task}_reliability.png"} <= names
        assert all(
            (tmp_path / f"{task}_{kind}.png").stat().st_size > 5000 for kind in ("confusion_counts", "reliability")
        )
    report = (tmp_path / REPORT).read_text()
    untoned = sum(item["tone"] is None for item in items)
    assert f"{untoned} articles carry no tone label and are left out of the tone metrics" in report
    assert "![topic reliability diagram](topic_reliability.png)" in report and "| majority baseline |" in report
    metrics = json.loads(
        (tmp_path / "metrics.json").read_text(), parse_constant=lambda name: pytest.fail(f"{name} in metrics.json")
    )
    assert metrics["tasks"]["tone"]["metrics"]["items"] == len(items) - untoned
    assert metrics["tasks"]["topic"]["metrics"]["accuracy"] == evaluation.tasks["topic"].metrics["accuracy"]


def test_confident_mistakes_come_first_with_terms_from_their_own_text(tiny_model):
    items = _held_out(6, 12)
    mistakes = evaluate(tiny_model, as_articles(items), FAST).tasks["topic"].mistakes
    texts = {item["id"]: (item["title"] + " " + item["text"]).lower() for item in items}
    assert 0 < len(mistakes) <= 20
    probabilities = [mistake["probability"] for mistake in mistakes]
    assert probabilities == sorted(probabilities, reverse=True)
    for mistake in mistakes:
        assert mistake["true"] != mistake["predicted"] and mistake["terms"]
        for term in mistake["terms"]:
            words = term["term"].split()  # bigrams skip stop words: check each word
            assert term["weight"] > 0 and all(word in texts[mistake["id"]] for word in words)


def test_labels_the_model_never_saw_are_reported_not_dropped(tmp_path):
    known = ["sports", "law_crime", "armed_conflicts_attacks"]
    model = tiny_classifier([item for item in corpus_slice(6) if item["topic"] in known])
    items = _held_out(6, 9, topics=known + ["arts_culture"])
    evaluation = evaluate(model, as_articles(items), FAST)
    topic = evaluation.tasks["topic"]
    assert topic.unseen == {"arts_culture": 3}
    assert topic.metrics["items"] == 12 and topic.metrics["log_loss_items"] == 9
    assert evaluation.baseline_labels.startswith("the evaluated articles")
    write_report(evaluation, tmp_path)
    report = (tmp_path / REPORT).read_text()
    assert "3 articles have labels the model never saw: `arts_culture` (3)" in report
    assert "| arts_culture (never seen by the model) |" in report


def test_comparison_section_gives_a_plain_verdict(tiny_model, tmp_path):
    evaluation = evaluate(tiny_model, as_articles(_held_out(6, 8)), FAST, reference=tiny_model)
    assert evaluation.comparison.verdict == "no significant difference"
    evaluation.context = {"model_uri": "models:/m/2", "reference_uri": "models:/m@champion"}
    write_report(evaluation, tmp_path)
    report = (tmp_path / REPORT).read_text()
    assert (
        "## Comparison" in report
        and "**Verdict: the candidate is not significantly different from the reference.**" in report
    )


def test_a_task_without_labelled_articles_is_left_out(tiny_model):
    items = [dict(item, tone=None) for item in _held_out(6, 7)]
    assert list(evaluate(tiny_model, as_articles(items), FAST).tasks) == ["topic"]
