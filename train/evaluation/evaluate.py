"""Judge one model on labelled articles: every number of an evaluation, in one place.

:func:`evaluate` scores through the served model's own ``predict_proba`` (what users get) and is
the one evaluation of the project: a training run logs it per split, the model card and
``newsclf evaluate`` report it, and with :data:`CHEAP` (macro-F1 and accuracy only) the grid search,
rolling-origin folds, streaming epochs and the bench score with it too. No MLflow and no files
here: newsclf.train.evaluation.report writes the report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from newsclf.folder import TONE_APPLIES
from newsclf.model import APPLIES, NOT_APPLICABLE, NewsClassifier
from newsclf.steps import classifier_of, features_of
from newsclf.train.classifiers import uncalibrated
from newsclf.train.data.articles import Articles
from newsclf.train.evaluation.comparison import Comparison, compare_predictions, predicted_labels, task_truth
from newsclf.train.evaluation.metrics import (
    bootstrap_interval,
    calibration_bins,
    class_f1,
    confusion_counts,
    confusion_scores,
    ece_if_calibrated,
    expected_calibration_error,
    grouped,
    macro_f1,
    metric_name,
    probability_log_loss,
    reliability,
    task_labels,
)
from newsclf.train.evaluation.short_texts import short_text_ece

MAJORITY, STRATIFIED = "majority", "stratified"
# One random draw moves a few hundred items' macro-F1 by about 0.02: the stratified baseline is a mean.
STRATIFIED_DRAWS = 25

__all__ = ["CHEAP", "Evaluation", "ReportSettings", "TaskEvaluation", "evaluate", "macro_f1_scores"]


@dataclass(frozen=True)
class ReportSettings:
    """How thorough the evaluation is; the defaults are what ``newsclf evaluate`` uses."""

    resamples: int = 1000  # 0: the cheap mode, no intervals, baselines, mistakes or calibration
    seed: int = 0
    level: float = 0.95
    mistakes: int = 20
    terms: int = 5
    calibration_bins: int = 10
    excerpt_chars: int = 200
    # The calibration error without the calibration training added (``<task>/ece_uncalibrated``): a
    # training run has it from its calibration step (newsclf.train.fit.calibration.before_after).
    uncalibrated: bool = True

    def __post_init__(self):
        if self.resamples < 100 and self.resamples != 0:
            raise ValueError(f"resamples must be >= 100 for a usable interval (0 for none), got {self.resamples}")
        if not 0.5 <= self.level < 1:
            raise ValueError(f"level must be in [0.5, 1), got {self.level}")


@dataclass
class TaskEvaluation:
    """One task's scores, tables and the predictions behind them."""

    task: str
    labels: list[str]  # the model's labels, then the data's labels the model never saw
    unseen: dict[str, int]  # data label the model never saw -> items
    y_true: list[str]
    y_pred: list[str]
    metrics: dict[str, float | None]
    per_class: list[dict[str, Any]]
    calibration: list[dict[str, float]]
    baselines: dict[str, dict[str, float | None]]
    left_out: int = 0  # articles without a label for this task
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    mistakes: list[dict[str, Any]] = field(default_factory=list)
    # The same bins without the calibration training added (train/fit/calibration.py), when it added one.
    uncalibrated: list[dict[str, float]] | None = None
    # The probabilities behind y_pred, columns in the model's label order (the first len(columns) labels).
    proba: np.ndarray | None = None

    def flat_metrics(self) -> dict[str, float]:
        """``<task>/<metric>`` numbers: scores, intervals, per-class F1 (``<task>/f1/<label>``) and
        baselines (``<task>/<baseline>/<metric>``)."""
        flat = grouped({name: value for name, value in self.metrics.items() if value is not None}, self.task)
        flat.update({metric_name(self.task, "f1", row["label"]): row["f1"] for row in self.per_class})
        for baseline, scores in self.baselines.items():
            flat.update(
                grouped({name: value for name, value in scores.items() if value is not None}, self.task, baseline)
            )
        return flat


@dataclass
class Evaluation:
    """Everything one evaluation found; ``context`` describes the model and data for the header."""

    tasks: dict[str, TaskEvaluation]
    settings: ReportSettings
    baseline_labels: str  # where the baselines learned their label distribution
    comparison: Comparison | None = None
    context: dict[str, Any] = field(default_factory=dict)

    def summary_metrics(self) -> dict[str, float]:
        """Flat ``<task>/<metric>`` numbers (baselines and comparison too), for MLflow."""
        flat: dict[str, float] = {}
        for result in self.tasks.values():
            flat.update(result.flat_metrics())
        if self.comparison is not None:
            flat.update(self.comparison.flat_metrics("compare"))
        return flat


def evaluate(
    model: NewsClassifier,
    articles: Articles,
    settings: ReportSettings = ReportSettings(),
    training_labels: Mapping[str, Sequence[str]] | None = None,
    reference: NewsClassifier | None = None,
) -> Evaluation:
    """Score ``model`` on every task it has (and its tone-applies model) through its ``predict_proba``,
    against baselines and optionally a ``reference`` model.

    ``training_labels`` (labels per task of the model's training split) teach the baselines the
    label distribution; without them the baselines learn it from ``articles`` themselves, which
    flatters them slightly. A task without labelled articles (no tones) is left out.
    """
    truth = task_truth(articles)
    probabilities = model.predict_proba(articles.texts)
    tasks = {}
    for task in model.tasks:
        if any(label is not None for label in truth[task]):
            known = training_labels.get(task) if training_labels else None
            tasks[task] = _evaluate_task(model, task, articles, truth[task], probabilities[task], settings, known)
    if "tone" in tasks and settings.resamples:
        # The tone of the articles' single sentences, each labelled with its article's tone.
        ece, sentences = short_text_ece(model, articles)
        tasks["tone"].metrics |= {"short_text_sentences": sentences} | (
            {"short_text_ece": ece} if ece is not None else {}
        )
    # Judged on data that says which articles carry a tone: some article has one.
    if TONE_APPLIES in probabilities and any(tone is not None for tone in articles.tones):
        applies = probabilities[TONE_APPLIES]
        # Every article has a truth here: whether it carries a tone.
        y_true = [NOT_APPLICABLE if tone is None else APPLIES for tone in articles.tones]
        result = score_task(
            TONE_APPLIES, y_true, np.column_stack([applies, 1 - applies]), [APPLIES, NOT_APPLICABLE], settings
        )
        result.ids, result.texts = list(articles.ids), list(articles.texts)
        if settings.resamples and settings.uncalibrated:
            topic_features = features_of(model.pipelines["topic"])  # what the tone-applies model reads
            _add_uncalibrated(result, model.tone_applies, topic_features, result.texts, settings)
        tasks[TONE_APPLIES] = result
    comparison = None
    if reference is not None:
        shared = [task for task in tasks if task in reference.tasks]
        candidate_labels = {task: _spread(truth[task], tasks[task].y_pred) for task in shared}
        reference_labels = {task: predicted_labels(reference, task, articles.texts, truth[task]) for task in shared}
        comparison = compare_predictions(
            {task: truth[task] for task in shared},
            reference_labels,
            candidate_labels,
            {task: task_labels(tasks[task].labels + reference.labels(task), truth[task]) for task in shared},
            settings.resamples,
            settings.seed,
            settings.level,
        )
    source = (
        "the model's training split"
        if training_labels
        else "the evaluated articles themselves (training labels unknown)"
    )
    return Evaluation(tasks, settings, source, comparison)


def macro_f1_scores(model: NewsClassifier, articles: Articles) -> dict[str, float]:
    """Macro-F1 per task (topic, tone) of ``model`` on ``articles``: the cheap evaluation search and epochs rank by."""
    evaluation = evaluate(model, articles, CHEAP)
    return {task: result.metrics["macro_f1"] for task, result in evaluation.tasks.items() if task in model.tasks}


def _spread(truth: Sequence[str | None], values: Sequence[str]) -> list[str | None]:
    """Put per-item values back at the positions of the articles that have a true label."""
    found = iter(values)
    return [next(found) if label is not None else None for label in truth]


def _evaluate_task(
    model: NewsClassifier,
    task: str,
    articles: Articles,
    truth: list[str | None],
    all_proba: np.ndarray,
    settings: ReportSettings,
    training_labels,
) -> TaskEvaluation:
    positions = [i for i, label in enumerate(truth) if label is not None]
    texts = [articles.texts[i] for i in positions]
    proba = all_proba[positions]
    result = score_task(task, [truth[i] for i in positions], proba, model.labels(task), settings, training_labels)
    result.left_out = len(truth) - len(positions)
    result.ids, result.texts = [articles.ids[i] for i in positions], texts
    if settings.resamples:
        result.mistakes = _confident_mistakes(model, task, result, proba, settings)
        if settings.uncalibrated:
            pipeline = model.pipelines[task]
            _add_uncalibrated(result, classifier_of(pipeline), features_of(pipeline), texts, settings)
    return result


def _add_uncalibrated(
    result: TaskEvaluation, classifier, features, texts: list[str], settings: ReportSettings
) -> None:
    """The reliability bins and ECE of ``classifier`` without the calibration training added (reading the
    ``features`` pipeline's output), to show beside the calibrated ones."""
    base = uncalibrated(classifier)
    if base is classifier or not hasattr(base, "predict_proba") or not texts:
        return
    proba = base.predict_proba(features.transform(texts))
    result.uncalibrated = reliability(
        proba, result.y_true, [str(label) for label in base.classes_], settings.calibration_bins
    )
    result.metrics["ece_uncalibrated"] = expected_calibration_error(result.uncalibrated)


def score_task(
    task: str,
    y_true: Sequence[str],
    proba: np.ndarray,
    model_labels: Sequence[str],
    settings: ReportSettings = ReportSettings(),
    training_labels: Sequence[str] | None = None,
) -> TaskEvaluation:
    """Every number of one task from the true labels and the model's probabilities.

    ``model_labels`` orders the columns of ``proba``; true labels outside it are reported as
    unseen. The baselines learn the label distribution from ``training_labels`` (else ``y_true``).
    """
    y_true, model_labels = list(y_true), list(model_labels)
    y_pred = [model_labels[i] for i in proba.argmax(axis=1)]
    unseen = Counter(label for label in y_true if label not in model_labels)
    labels = task_labels(model_labels, y_true)

    if not settings.resamples:  # the cheap mode
        metrics = {"accuracy": float(accuracy_score(y_true, y_pred)), "macro_f1": macro_f1(y_true, y_pred, labels)}
        return TaskEvaluation(
            task, labels, dict(sorted(unseen.items())), y_true, y_pred, metrics, [], [], {}, proba=proba
        )
    metrics = _scores(y_true, y_pred, proba, model_labels, labels)
    metrics.update(_intervals(y_true, y_pred, labels, settings))
    correct = np.array([t == p for t, p in zip(y_true, y_pred)])
    bins = calibration_bins(proba.max(axis=1), correct, settings.calibration_bins)
    metrics["ece"] = expected_calibration_error(bins)
    metrics["ece_if_calibrated"] = ece_if_calibrated(proba.max(axis=1), settings.calibration_bins, seed=settings.seed)

    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    predicted_counts = Counter(y_pred)
    per_class = [
        {
            "label": label,
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(n),
            "predicted": predicted_counts[label],
            "seen_in_training": label in model_labels,
        }
        for label, p, r, f, n in zip(labels, precision, recall, f1, support)
    ]
    baselines = _baselines(y_true, training_labels or y_true, labels, settings.seed)
    return TaskEvaluation(
        task, labels, dict(sorted(unseen.items())), y_true, y_pred, metrics, per_class, bins, baselines, proba=proba
    )


def _scores(
    y_true: list[str], y_pred: list[str], proba: np.ndarray, proba_labels: list[str], labels: list[str]
) -> dict[str, float | None]:
    """Accuracy, macro-F1 over ``labels``, weighted F1, and log loss over the items whose label has a
    probability column."""
    scored = [i for i, label in enumerate(y_true) if label in proba_labels]
    # A log loss needs two columns; a baseline that learnt one label has one.
    loss = (
        probability_log_loss([y_true[i] for i in scored], proba[scored], proba_labels)
        if scored and len(proba_labels) > 1
        else None
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": macro_f1(y_true, y_pred, labels),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "log_loss": None if loss is None else float(loss),
        "log_loss_items": len(scored),
        "items": len(y_true),
    }


def _intervals(y_true: list[str], y_pred: list[str], labels: list[str], settings: ReportSettings) -> dict[str, float]:
    index = {label: i for i, label in enumerate(labels)}
    true_index = np.array([index[label] for label in y_true])
    pred_index = np.array([index[label] for label in y_pred])
    low, high = bootstrap_interval(
        lambda positions: np.stack(
            confusion_scores(confusion_counts(true_index[positions], pred_index[positions], len(labels)))
        ),
        [np.arange(len(y_true))],
        settings.resamples,
        settings.seed,
        settings.level,
    )
    return {
        "accuracy_ci_low": float(low[0]),
        "accuracy_ci_high": float(high[0]),
        "macro_f1_ci_low": float(low[1]),
        "macro_f1_ci_high": float(high[1]),
    }


def _baselines(
    y_true: list[str], fit_labels: Sequence[str], labels: list[str], seed: int
) -> dict[str, dict[str, float | None]]:
    """Majority class (with the prior as probabilities) and a stratified random guess (mean of many draws),
    scored over the model's task ``labels`` (and any label only the baselines learned)."""
    labels = task_labels(labels, fit_labels)
    features, fit_features = np.zeros((len(y_true), 1)), np.zeros((len(fit_labels), 1))
    majority = DummyClassifier(strategy="prior").fit(fit_features, list(fit_labels))
    scores = _scores(
        y_true,
        [str(label) for label in majority.predict(features)],
        majority.predict_proba(features),
        [str(c) for c in majority.classes_],
        labels,
    )
    results = {MAJORITY: {key: scores[key] for key in ("accuracy", "macro_f1", "weighted_f1", "log_loss")}}
    index = {label: i for i, label in enumerate(labels)}
    guesses = [
        DummyClassifier(strategy="stratified", random_state=seed + draw)
        .fit(fit_features, list(fit_labels))
        .predict(features)
        for draw in range(STRATIFIED_DRAWS)
    ]
    # All draws scored at once from their confusion counts, as the bootstrap intervals are.
    true_index = np.array([index[label] for label in y_true])
    guess_index = np.array([[index[str(label)] for label in guess] for guess in guesses])
    confusions = confusion_counts(true_index, guess_index, len(labels))
    accuracy_draws, macro_draws = confusion_scores(confusions)
    true_counts = confusions.sum(axis=-1)
    weighted_draws = (class_f1(confusions) * true_counts).sum(axis=-1) / true_counts.sum(axis=-1)
    means = (float(values.mean()) for values in (accuracy_draws, macro_draws, weighted_draws))
    # Its "probabilities" are one-hot random draws: no log loss.
    results[STRATIFIED] = dict(zip(("accuracy", "macro_f1", "weighted_f1"), means)) | {"log_loss": None}
    return results


def _confident_mistakes(
    model: NewsClassifier, task: str, result: TaskEvaluation, proba: np.ndarray, settings: ReportSettings
):
    """The mistakes the model was surest of, each explained by the product's own :meth:`NewsClassifier.explain`."""
    model_labels = model.labels(task)
    best = proba.argmax(axis=1)
    wrong = [i for i, (label, guess) in enumerate(zip(result.y_true, result.y_pred)) if label != guess]
    chosen = sorted(wrong, key=lambda i: -proba[i, best[i]])[: settings.mistakes]
    terms = [model.explain(result.texts[i], settings.terms)[task]["terms"] for i in chosen]
    return [
        {
            "id": result.ids[i],
            "excerpt": _excerpt(result.texts[i], settings.excerpt_chars),
            "true": result.y_true[i],
            "predicted": result.y_pred[i],
            "probability": float(proba[i, best[i]]),
            "true_probability": float(proba[i, model_labels.index(result.y_true[i])])
            if result.y_true[i] in model_labels
            else None,
            "terms": [term | {"weight": round(term["weight"], 4)} for term in item_terms],
        }
        for i, item_terms in zip(chosen, terms)
    ]


def _excerpt(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# The cheap mode: macro-F1 and accuracy per task, nothing else.
CHEAP = ReportSettings(resamples=0)
