"""Judge one model on labelled articles and write the report a reviewer reads.

:func:`evaluate_articles` computes everything (no MLflow, no files); :func:`write_report` writes
``report.md``, ``metrics.json``, ``mistakes.json`` and the PNGs into a folder.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from newsclf.model import NewsClassifier
from newsclf.train.data.articles import Articles
from newsclf.train.evaluation.comparison import (
    BETTER,
    WORSE,
    Comparison,
    compare_predictions,
    predicted_labels,
    task_truth,
)
from newsclf.train.evaluation.figures import prediction_confusion_figure, reliability_figure
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
    task_labels,
)

MAJORITY, STRATIFIED = "majority", "stratified"
# One random draw moves a few hundred items' macro-F1 by about 0.02: the stratified baseline is a mean.
STRATIFIED_DRAWS = 25


@dataclass(frozen=True)
class ReportSettings:
    """How thorough the evaluation is; the defaults are what ``newsclf evaluate`` uses."""

    resamples: int = 1000
    seed: int = 0
    level: float = 0.95
    mistakes: int = 20
    terms: int = 5
    calibration_bins: int = 10
    excerpt_chars: int = 200

    def __post_init__(self):
        if self.resamples < 100:
            raise ValueError(f"resamples must be >= 100 for a usable interval, got {self.resamples}")
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


def evaluate_articles(
    model: NewsClassifier,
    articles: Articles,
    settings: ReportSettings = ReportSettings(),
    training_labels: Mapping[str, Sequence[str]] | None = None,
    reference: NewsClassifier | None = None,
) -> Evaluation:
    """Score ``model`` on every task it has, against baselines and optionally a ``reference`` model.

    ``training_labels`` (labels per task of the model's training split) teach the baselines the
    label distribution; without them the baselines learn it from ``articles`` themselves, which
    flatters them slightly. A task without labelled articles (no tones) is left out.
    """
    truth = task_truth(articles)
    tasks = {}
    for task in model.tasks:
        if any(label is not None for label in truth[task]):
            known = training_labels.get(task) if training_labels else None
            tasks[task] = _evaluate_task(model, task, articles, truth[task], settings, known)
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


def _spread(truth: Sequence[str | None], values: Sequence[str]) -> list[str | None]:
    """Put per-item values back at the positions of the articles that have a true label."""
    found = iter(values)
    return [next(found) if label is not None else None for label in truth]


def _evaluate_task(
    model: NewsClassifier,
    task: str,
    articles: Articles,
    truth: list[str | None],
    settings: ReportSettings,
    training_labels,
) -> TaskEvaluation:
    positions = [i for i, label in enumerate(truth) if label is not None]
    texts = [articles.texts[i] for i in positions]
    pipeline, model_labels = model.pipelines[task], model.labels(task)
    proba = pipeline.predict_proba(texts)
    result = score_task(task, [truth[i] for i in positions], proba, model_labels, settings, training_labels)
    result.left_out = len(truth) - len(positions)
    result.ids, result.texts = [articles.ids[i] for i in positions], texts
    result.mistakes = _confident_mistakes(model, task, result, proba, settings)
    _add_uncalibrated(result, pipeline, texts, settings)
    return result


def _add_uncalibrated(result: TaskEvaluation, pipeline, texts: list[str], settings: ReportSettings) -> None:
    """The reliability bins and ECE of the classifier under the calibration, to show beside the calibrated ones."""
    from newsclf.steps import classifier_of, features_of
    from newsclf.train.classifiers import uncalibrated
    from newsclf.train.evaluation.metrics import reliability

    classifier = classifier_of(pipeline)
    base = uncalibrated(classifier)
    if base is classifier or not hasattr(base, "predict_proba") or not texts:
        return
    proba = base.predict_proba(features_of(pipeline).transform(texts))
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
        task, labels, dict(sorted(unseen.items())), y_true, y_pred, metrics, per_class, bins, baselines
    )


def _scores(
    y_true: list[str], y_pred: list[str], proba: np.ndarray, proba_labels: list[str], labels: list[str]
) -> dict[str, float | None]:
    """Accuracy, macro-F1 over ``labels``, weighted F1, and log loss over the items whose label has a
    probability column."""
    scored = [i for i, label in enumerate(y_true) if label in proba_labels]
    loss = probability_log_loss([y_true[i] for i in scored], proba[scored], proba_labels) if scored else None
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


# --- writing -------------------------------------------------------------------------------------

REPORT, METRICS, MISTAKES = "report.md", "metrics.json", "mistakes.json"


def write_report(evaluation: Evaluation, folder: Path) -> list[Path]:
    """Write report.md, metrics.json, mistakes.json and the PNGs into ``folder``; returns the files."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for task, result in evaluation.tasks.items():
        items = f"{len(result.y_true)} articles"
        for name, figure in (
            (
                f"{task}_confusion_counts.png",
                prediction_confusion_figure(result.y_true, result.y_pred, result.labels, f"{task}: counts ({items})"),
            ),
            (
                f"{task}_confusion_normalised.png",
                prediction_confusion_figure(
                    result.y_true,
                    result.y_pred,
                    result.labels,
                    f"{task}: share of each true label ({items})",
                    normalize="true",
                ),
            ),
            (
                f"{task}_reliability.png",
                reliability_figure(result.calibration, f"{task}: reliability ({items})", before=result.uncalibrated),
            ),
        ):
            figure.savefig(folder / name, dpi=110)
            plt.close(figure)
            written.append(folder / name)
    (folder / METRICS).write_text(json.dumps(_clean(metrics_document(evaluation)), indent=2) + "\n", encoding="utf-8")
    mistakes = {task: result.mistakes for task, result in evaluation.tasks.items()}
    (folder / MISTAKES).write_text(json.dumps(_clean(mistakes), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / REPORT).write_text(report_markdown(evaluation), encoding="utf-8")
    return written + [folder / METRICS, folder / MISTAKES, folder / REPORT]


def metrics_document(evaluation: Evaluation) -> dict[str, Any]:
    """The content of metrics.json: context, settings, and per task every number of the report."""
    return {
        "context": evaluation.context,
        "settings": asdict(evaluation.settings),
        "baselines_fitted_on": evaluation.baseline_labels,
        "tasks": {
            task: {
                "metrics": result.metrics,
                "left_out_without_label": result.left_out,
                "unseen_labels": result.unseen,
                "per_class": result.per_class,
                "calibration_bins": result.calibration,
                "uncalibrated_bins": result.uncalibrated,
                "baselines": result.baselines,
            }
            for task, result in evaluation.tasks.items()
        },
        "comparison": evaluation.comparison.as_dict() if evaluation.comparison else None,
    }


def _clean(value: Any) -> Any:
    """NaN and infinity are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value


def report_markdown(evaluation: Evaluation) -> str:
    """report.md: readable on its own, with tables and the PNGs beside it."""
    context, settings = evaluation.context, evaluation.settings
    level = f"{settings.level:.0%}"
    lines = [f"# Evaluation of {context.get('model_uri', 'a model')}", ""]
    lines += [f"- **{key}**: {value}" for key, value in context.get("header", {}).items()]
    lines += [
        "",
        "## Summary",
        "",
        f"Intervals are {level} percentile bootstrap intervals over {settings.resamples} resamples of the articles "
        f"(seed {settings.seed}).",
        "",
        f"| task | articles | accuracy [{level} CI] | macro-F1 [{level} CI] | weighted F1 | log loss | ECE |",
        "|---|---:|---|---|---:|---:|---:|",
    ]
    for task, result in evaluation.tasks.items():
        m = result.metrics
        lines.append(
            f"| {task} | {m['items']} | {m['accuracy']:.3f} {_interval(m['accuracy_ci_low'], m['accuracy_ci_high'])} "
            f"| {m['macro_f1']:.3f} {_interval(m['macro_f1_ci_low'], m['macro_f1_ci_high'])} | {m['weighted_f1']:.3f} "
            f"| {number_text(m['log_loss'])} | {m['ece']:.3f} |"
        )
    if evaluation.comparison is not None:
        lines += _comparison_lines(evaluation.comparison, context)
    for result in evaluation.tasks.values():
        lines += _task_lines(result)
    lines += [
        "",
        "## How the numbers are made",
        "",
        "- Macro-F1 averages F1 over the labels that occur in the truth or the predictions (scikit-learn's default); "
        "weighted F1 weights each label by its support.",
        "- Log loss covers only articles whose true label the model knows: it has no probability for the others.",
        f"- ECE (expected calibration error): articles are binned by the probability of the predicted label "
        f"({settings.calibration_bins} equal-width bins); ECE is the article-weighted mean gap between each bin's "
        "accuracy and its mean probability. 0 is perfectly calibrated.",
        "- A term's weight is its TF-IDF value in the article times the model's weight for the predicted label, "
        "as `newsclf explain` gives it; `(char)` marks a word whose character n-grams are summed.",
        f"- Baselines: *majority* always answers the most frequent label (its probabilities are the label shares); "
        f"*stratified* draws labels at random in those shares (mean of {STRATIFIED_DRAWS} draws, "
        f"seeds from {settings.seed}). Both learned the label distribution from {evaluation.baseline_labels}.",
        "",
    ]
    return "\n".join(lines)


def _task_lines(result: TaskEvaluation) -> list[str]:
    task, m = result.task, result.metrics
    lines = ["", f"## {task.capitalize()}", ""]
    if result.left_out:
        lines.append(f"- {result.left_out} articles carry no {task} label and are left out of the {task} metrics.")
    if result.unseen:
        names = ", ".join(f"`{label}` ({count})" for label, count in result.unseen.items())
        lines.append(
            f"- {sum(result.unseen.values())} articles have labels the model never saw: {names}. They count as "
            "mistakes in accuracy and F1, and are left out of log loss "
            f"({m['log_loss_items']} of {m['items']} articles scored)."
        )
    lines += [
        "",
        "| | accuracy | macro-F1 | weighted F1 | log loss |",
        "|---|---:|---:|---:|---:|",
        f"| **model** | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | {m['weighted_f1']:.3f} "
        f"| {number_text(m['log_loss'])} |",
    ]
    for name, scores in result.baselines.items():
        lines.append(
            f"| {name} baseline | {scores['accuracy']:.3f} | {scores['macro_f1']:.3f} | {scores['weighted_f1']:.3f} "
            f"| {number_text(scores['log_loss'])} |"
        )
    lines += ["", "| label | precision | recall | F1 | support | predicted |", "|---|---:|---:|---:|---:|---:|"]
    for row in result.per_class:
        label = row["label"] if row["seen_in_training"] else f"{row['label']} (never seen by the model)"
        lines.append(
            f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} "
            f"| {row['support']} | {row['predicted']} |"
        )
    lines += [
        "",
        "### Confusion matrices",
        "",
        f"![{task} confusion counts]({task}_confusion_counts.png)",
        "",
        f"![{task} confusion normalised]({task}_confusion_normalised.png)",
        "",
        "### Calibration",
        "",
        f"Expected calibration error: **{m['ece']:.3f}**. A perfectly calibrated model with these confidences "
        f"would show about {m['ece_if_calibrated']:.3f} on {m['items']} articles from sampling alone (the median "
        "over random draws), so only the part above that points to miscalibration.",
        "",
        f"![{task} reliability diagram]({task}_reliability.png)",
        "",
    ]
    if result.uncalibrated:
        lines += [
            f"Before the model's calibration (the classifier's own probabilities, the dotted curve) it was "
            f"**{m['ece_uncalibrated']:.3f}**.",
            "",
        ]
    lines += [
        "| confidence bin | articles | mean probability | accuracy |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {b['low']:.1f}-{b['high']:.1f} | {b['count']} | {b['confidence']:.3f} | {b['accuracy']:.3f} |"
        for b in result.calibration
    ]
    wrong = sum(t != p for t, p in zip(result.y_true, result.y_pred))
    lines += ["", "### Most confident mistakes", ""]
    if not result.mistakes:
        lines.append("None: every article was labelled correctly.")
        return lines
    lines += [
        f"The {len(result.mistakes)} of {wrong} mistakes the model was surest of, with the terms that pushed hardest "
        "towards the wrong label (`(char)` marks a word's summed character n-grams).",
        "",
    ]
    lines += [
        "| # | id | excerpt | true | predicted | probability | terms that drove it |",
        "|---:|---|---|---|---|---:|---|",
    ]
    for rank, mistake in enumerate(result.mistakes, start=1):
        terms = ", ".join(f"{_term(t)} {t['weight']:.2f}" for t in mistake["terms"]) or "(none)"
        lines.append(
            f"| {rank} | {_cell(mistake['id'])} | {_cell(mistake['excerpt'])} "
            f"| {mistake['true']} | {mistake['predicted']} "
            f"| {mistake['probability']:.3f} | {terms} |"
        )
    return lines


def _comparison_lines(comparison: Comparison, context: dict[str, Any]) -> list[str]:
    reference, candidate = context.get("reference_uri", "reference"), context.get("model_uri", "candidate")
    level = f"{comparison.level:.0%}"
    lines = [
        "",
        "## Comparison",
        "",
        f"Reference: {reference}. Candidate: {candidate}. Same articles; differences are candidate minus reference.",
        "",
        f"| task | articles | reference macro-F1 | candidate macro-F1 | difference [{level} CI] | reference accuracy "
        "| candidate accuracy | only candidate right | only reference right | McNemar exact p |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for t in comparison.tasks:
        lines.append(
            f"| {t.task} | {t.items} | {t.reference_macro_f1:.3f} | {t.candidate_macro_f1:.3f} "
            f"| {t.candidate_macro_f1 - t.reference_macro_f1:+.3f} "
            f"[{t.macro_f1_difference_low:+.3f}, {t.macro_f1_difference_high:+.3f}] "
            f"| {t.reference_accuracy:.3f} | {t.candidate_accuracy:.3f} "
            f"| {t.only_candidate_right} | {t.only_reference_right} | {t.mcnemar_p_value:.3g} |"
        )
    lines += [
        "",
        f"Score (mean macro-F1 over the tasks): reference {comparison.reference_score:.3f}, candidate "
        f"{comparison.candidate_score:.3f}, difference {comparison.difference:+.3f} "
        f"[{comparison.difference_low:+.3f}, {comparison.difference_high:+.3f}] "
        f"(paired bootstrap, {comparison.resamples} resamples); "
        f"paired permutation test p = {comparison.p_value:.3g}.",
        "",
        f"**Verdict: the candidate is {_verdict_phrase(comparison.verdict)} the reference.**",
        "",
        "Better or worse means the permutation test finds the score difference significant "
        f"(p < {1 - comparison.level:.2g}): each article's two predictions are swapped between the models "
        "at random and the observed difference must be rare "
        "among the swapped ones. The bootstrap interval shows how large the difference is; when only a few articles "
        "differ it can exclude zero while the test does not, and the test decides. This is the rule that moves the "
        "champion alias after training.",
    ]
    return lines


def _verdict_phrase(verdict: str) -> str:
    return {BETTER: "better than", WORSE: "worse than"}.get(verdict, "not significantly different from")


def _interval(low: float, high: float) -> str:
    return f"[{low:.3f}, {high:.3f}]" if math.isfinite(low) and math.isfinite(high) else "[n/a: too few articles]"


def number_text(value: float | None) -> str:
    """A score with three decimals, or n/a when there is none."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _term(term: dict[str, Any]) -> str:
    """An explained term as a table cell: `peace talks`, or `military` (char)."""
    return f"`{_cell(term['term'])}`" + (" (char)" if term["kind"] == "char" else "")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
