"""The evaluation report a reviewer reads: :func:`write_report` writes ``report.md``,
``metrics.json``, ``mistakes.json`` and the PNGs of an :class:`Evaluation` into a folder.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from newsclf.train.evaluation.comparison import (
    BETTER,
    WORSE,
    Comparison,
)
from newsclf.train.evaluation.evaluate import STRATIFIED_DRAWS, Evaluation, TaskEvaluation
from newsclf.train.evaluation.figures import prediction_confusion_figure, reliability_figure

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
        "- Macro-F1 averages F1 over the labels the model knows, then any true label it never saw (a label neither "
        "true nor predicted here counts as F1 0), as every macro-F1 in newsclf does; weighted F1 weights each "
        "label by its support.",
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
