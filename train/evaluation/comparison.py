"""Paired comparison of two models on the same labelled articles: the rule that promotion uses.

Both models label the same articles. The score is macro-F1 per task, averaged over the tasks (the
number training has always compared). The verdict comes from a paired permutation test of the
score difference (approximate randomisation: each article's two predictions are swapped between
the models at random, ``resamples`` times, exactly when there are few articles):

- ``better``: the candidate scores higher and p < 1 - level (0.05 by default);
- ``worse``: the candidate scores lower and p < 1 - level;
- ``no significant difference``: otherwise, including identical predictions.

A paired bootstrap gives the size of the difference (95% interval, per task and overall) and
McNemar's exact test checks per-task accuracy; neither changes the verdict. The bootstrap interval
alone would be too eager: when only a handful of articles differ, all in one direction, it
excludes zero although the models could have swapped those few articles by chance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from newsclf.model import NewsClassifier
from newsclf.train.data.articles import Articles
from newsclf.train.evaluation.metrics import (
    bootstrap_interval,
    confusion_counts,
    confusion_scores,
    grouped,
    resample_batch,
    task_labels,
)

BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no significant difference"


@dataclass(frozen=True)
class TaskComparison:
    """One task: both models' scores on the same items, the interval of the difference, McNemar."""

    task: str
    items: int
    reference_accuracy: float
    candidate_accuracy: float
    reference_macro_f1: float
    candidate_macro_f1: float
    macro_f1_difference_low: float
    macro_f1_difference_high: float
    only_candidate_right: int
    only_reference_right: int
    mcnemar_p_value: float


@dataclass(frozen=True)
class Comparison:
    """The verdict on a candidate against a reference, with the numbers behind it."""

    tasks: list[TaskComparison]
    reference_score: float
    candidate_score: float
    difference_low: float
    difference_high: float
    p_value: float
    level: float
    resamples: int
    seed: int
    verdict: str

    @property
    def difference(self) -> float:
        """Candidate score minus reference score (mean macro-F1 over the tasks)."""
        return self.candidate_score - self.reference_score

    def flat_metrics(self, prefix: str) -> dict[str, float]:
        """The headline numbers as ``<prefix>/<name>``, for MLflow."""
        numbers = {
            "reference_score": self.reference_score,
            "candidate_score": self.candidate_score,
            "difference": self.difference,
            "difference_ci_low": self.difference_low,
            "difference_ci_high": self.difference_high,
            "p_value": self.p_value,
        }
        return grouped(numbers, prefix)

    def as_dict(self) -> dict:
        """Plain data for JSON."""
        return asdict(self) | {"difference": self.difference}


def compare_models(
    reference: NewsClassifier,
    candidate: NewsClassifier,
    articles: Articles,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Comparison:
    """Label ``articles`` with both models and compare them on every task both models have."""
    truth = task_truth(articles)
    tasks = [
        task for task in candidate.tasks if task in reference.tasks and any(label is not None for label in truth[task])
    ]
    return compare_predictions(
        {task: truth[task] for task in tasks},
        {task: predicted_labels(reference, task, articles.texts, truth[task]) for task in tasks},
        {task: predicted_labels(candidate, task, articles.texts, truth[task]) for task in tasks},
        {task: task_labels(reference.labels(task) + candidate.labels(task), truth[task]) for task in tasks},
        resamples,
        seed,
        level,
    )


def task_truth(articles: Articles) -> dict[str, list[str | None]]:
    """The true label of every article per task; None where the task does not apply (no tone)."""
    return {"topic": list(articles.topics), "tone": list(articles.tones)}


def predicted_labels(
    model: NewsClassifier, task: str, texts: Sequence[str], truth: Sequence[str | None]
) -> list[str | None]:
    """The model's label for ``task`` on every text that has a true label; None elsewhere."""
    positions = [i for i, label in enumerate(truth) if label is not None]
    predicted: list[str | None] = [None] * len(texts)
    if positions:
        for i, label in zip(positions, model.pipelines[task].predict([texts[i] for i in positions])):
            predicted[i] = str(label)
    return predicted


def compare_predictions(
    truth: Mapping[str, Sequence[str | None]],
    reference: Mapping[str, Sequence[str | None]],
    candidate: Mapping[str, Sequence[str | None]],
    labels: Mapping[str, Sequence[str]],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Comparison:
    """Compare two models' labels for the same articles; reproducible for a ``seed``.

    Every sequence runs over the same articles; ``truth[task][i]`` is None where article ``i`` does
    not count for ``task``. ``labels[task]`` is the label set macro-F1 averages over (see
    :mod:`newsclf.train.evaluation.metrics`): both models' labels and the true ones.
    """
    from scipy.stats import binomtest, permutation_test

    if not truth:
        raise ValueError("nothing to compare: no task has labelled articles that both models predict")
    tasks = [_Task(truth[task], reference[task], candidate[task], labels[task]) for task in truth]
    n_articles = len(tasks[0].truth)

    def differences(positions: np.ndarray) -> np.ndarray:
        # Per task (candidate - reference macro-F1), then the difference of the mean over tasks.
        rows = np.stack(
            [
                t.macro_f1(t.candidate[positions], positions) - t.macro_f1(t.reference[positions], positions)
                for t in tasks
            ]
        )
        return np.concatenate([rows, rows.mean(axis=0, keepdims=True)])

    # Articles are resampled within groups of the same labelled tasks: every resample keeps its tone articles.
    labelled = np.stack([t.truth >= 0 for t in tasks], axis=1)
    groups = [np.flatnonzero((labelled == row).all(axis=1)) for row in np.unique(labelled, axis=0)]
    low, high = bootstrap_interval(differences, groups, resamples, seed, level)

    def swapped_difference(first: np.ndarray, second: np.ndarray, axis: int = -1) -> np.ndarray:
        # Positions < n pick the reference's label of that article, n + i the candidate's.
        return np.mean([t.macro_f1(t.both[second]) - t.macro_f1(t.both[first]) for t in tasks], axis=0)

    everyone = np.arange(n_articles)
    test = permutation_test(
        (everyone, everyone + n_articles),
        swapped_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        batch=resample_batch(resamples, n_articles),
        rng=np.random.default_rng(seed),
    )
    results = []
    for row, (task, t) in enumerate(zip(truth, tasks)):
        reference_accuracy, reference_f1 = confusion_scores(confusion_counts(t.truth, t.reference, t.n_labels))
        candidate_accuracy, candidate_f1 = confusion_scores(confusion_counts(t.truth, t.candidate, t.n_labels))
        scored = t.truth >= 0
        only_candidate = int(np.sum(scored & (t.candidate == t.truth) & (t.reference != t.truth)))
        only_reference = int(np.sum(scored & (t.reference == t.truth) & (t.candidate != t.truth)))
        discordant = only_candidate + only_reference
        mcnemar = binomtest(only_candidate, discordant, 0.5).pvalue if discordant else 1.0
        results.append(
            TaskComparison(
                task,
                int(scored.sum()),
                float(reference_accuracy),
                float(candidate_accuracy),
                float(reference_f1),
                float(candidate_f1),
                float(low[row]),
                float(high[row]),
                only_candidate,
                only_reference,
                float(mcnemar),
            )
        )
    reference_score = float(np.mean([r.reference_macro_f1 for r in results]))
    candidate_score = float(np.mean([r.candidate_macro_f1 for r in results]))
    p_value = float(test.pvalue)
    significant = p_value < 1 - level
    verdict = NO_DIFFERENCE
    if significant and candidate_score != reference_score:
        verdict = BETTER if candidate_score > reference_score else WORSE
    return Comparison(
        results,
        reference_score,
        candidate_score,
        float(low[-1]),
        float(high[-1]),
        p_value,
        level,
        resamples,
        seed,
        verdict,
    )


class _Task:
    """One task's labels as indices: truth (-1 where it does not apply), each model's, and both stacked."""

    def __init__(
        self,
        truth: Sequence[str | None],
        reference: Sequence[str | None],
        candidate: Sequence[str | None],
        labels: Sequence[str],
    ):
        # The task labels, plus any predicted label outside them so that every prediction has a code.
        labels = task_labels(labels, [*truth, *reference, *candidate])
        index = {label: i for i, label in enumerate(labels)}

        def codes(column: Sequence[str | None]) -> np.ndarray:
            return np.array([index[label] if label is not None else -1 for label in column], dtype=np.int64)

        self.truth, self.reference, self.candidate, self.n_labels = (
            codes(truth),
            codes(reference),
            codes(candidate),
            len(labels),
        )
        self.both = np.concatenate([self.reference, self.candidate])

    def macro_f1(self, predicted: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """Macro-F1 of predictions aligned with ``truth[positions]`` (all articles when None)."""
        truth = self.truth if positions is None else self.truth[positions]
        return confusion_scores(confusion_counts(truth, predicted, self.n_labels))[1]
