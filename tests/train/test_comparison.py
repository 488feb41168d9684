"""The paired comparison that both `newsclf evaluate --compare` and promotion after training use."""

import pytest

from newsclf.train.evaluation.comparison import BETTER, NO_DIFFERENCE, WORSE, compare_models, compare_predictions
from tests.helpers import as_articles, corpus_slice


def _case(n_both_right=30, only_candidate=6, only_reference=1, both_wrong=3):
    """Topic labels a/b; the candidate and reference disagree on a known number of articles."""
    truth, reference, candidate = [], [], []
    for count, reference_right, candidate_right in (
        (n_both_right, True, True),
        (only_candidate, False, True),
        (only_reference, True, False),
        (both_wrong, False, False),
    ):
        for i in range(count):
            label, other = ("a", "b") if i % 2 else ("b", "a")
            truth.append(label)
            reference.append(label if reference_right else other)
            candidate.append(label if candidate_right else other)
    return {"topic": truth}, {"topic": reference}, {"topic": candidate}, {"topic": ["a", "b"]}


def test_mcnemar_exact_p_value_is_hand_computed():
    comparison = compare_predictions(*_case(only_candidate=6, only_reference=1), resamples=200)
    topic = comparison.tasks[0]
    assert (topic.only_candidate_right, topic.only_reference_right) == (6, 1)
    # Two-sided exact binomial: 2 * P(X <= 1 | n=7, p=1/2) = 2 * (1 + 7) / 128
    assert topic.mcnemar_p_value == pytest.approx(16 / 128)
    assert topic.items == 40
    assert topic.reference_accuracy == pytest.approx(31 / 40) and topic.candidate_accuracy == pytest.approx(36 / 40)


def test_identical_predictions_are_no_significant_difference():
    truth, reference, _, labels = _case()
    comparison = compare_predictions(truth, reference, reference, labels, resamples=200)
    assert comparison.verdict == NO_DIFFERENCE and comparison.p_value == 1.0
    assert comparison.difference == 0 and comparison.difference_low == comparison.difference_high == 0


def test_a_clear_gain_is_better_and_the_reverse_is_worse_reproducibly():
    truth, reference, candidate, labels = _case(n_both_right=40, only_candidate=25, only_reference=2)
    better = compare_predictions(truth, reference, candidate, labels, resamples=500, seed=3)
    assert better.verdict == BETTER and better.p_value < 0.05 and better.difference_low > 0
    assert better == compare_predictions(truth, reference, candidate, labels, resamples=500, seed=3)
    assert compare_predictions(truth, candidate, reference, labels, resamples=500, seed=3).verdict == WORSE


def test_a_few_articles_in_one_direction_are_not_enough():
    # 4 articles differ, all for the candidate: the sign test gives p = 2/16; a bootstrap interval
    # alone would exclude zero here, the permutation test does not.
    comparison = compare_predictions(
        *_case(n_both_right=100, only_candidate=4, only_reference=0, both_wrong=0), resamples=1000
    )
    assert comparison.difference_low > 0
    assert comparison.p_value > 0.05 and comparison.verdict == NO_DIFFERENCE


def test_articles_without_a_tone_do_not_count_for_tone():
    truth = {"topic": ["a", "b", "a", "b"], "tone": ["m", None, "d", None]}
    reference = {"topic": ["a", "b", "a", "a"], "tone": ["m", None, "m", None]}
    candidate = {"topic": ["a", "b", "a", "b"], "tone": ["m", None, "d", None]}
    comparison = compare_predictions(
        truth, reference, candidate, {"topic": ["a", "b"], "tone": ["d", "m"]}, resamples=200
    )
    tone = comparison.tasks[1]
    assert tone.items == 2 and tone.reference_accuracy == 0.5 and tone.candidate_accuracy == 1.0
    # reference tone: m right, d predicted as m -> F1 m = 2/3, F1 d = 0 -> 1/3;
    # topic: 0.75 accuracy, F1 (0.8 + 2/3) / 2
    assert tone.reference_macro_f1 == pytest.approx(1 / 3)
    assert comparison.reference_score == pytest.approx(((0.8 + 2 / 3) / 2 + 1 / 3) / 2)
    assert comparison.candidate_score == 1.0


def test_macro_f1_averages_over_the_given_labels_not_only_those_that_occur():
    # The example: truth [a, a, b], predicted [a, c, b], model labels {a, b, c, d}.
    truth, labels = {"topic": ["a", "a", "b"]}, {"topic": ["a", "b", "c", "d"]}
    comparison = compare_predictions(
        truth, {"topic": ["a", "c", "b"]}, {"topic": ["a", "a", "b"]}, labels, resamples=200
    )
    assert comparison.reference_score == pytest.approx((2 / 3 + 1 + 0 + 0) / 4)
    assert comparison.candidate_score == pytest.approx((1 + 1 + 0 + 0) / 4)


def test_a_model_compared_with_itself_on_articles(tiny_model):
    items = corpus_slice(3)
    articles = as_articles(items)
    comparison = compare_models(tiny_model, tiny_model, articles, resamples=100)
    assert [t.task for t in comparison.tasks] == ["topic", "tone"]
    assert comparison.verdict == NO_DIFFERENCE
    assert comparison.tasks[1].items == sum(item["tone"] is not None for item in items)
