"""The model card: what a registered version is for, what it was trained on, how well it does and
where it fails, written for the people who read the registry rather than the code.

One card per registered version: logged as ``model_card.md`` in the training run and set as the
version's description, so the MLflow UI shows it on the version's page; ``newsclf card --model
URI`` prints it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from newsclf.model import SHORT_TEXT_TONE, NewsClassifier
from newsclf.train.config import ExperimentConfig
from newsclf.train.data.articles import Splits
from newsclf.train.evaluation.evaluate import Evaluation, ReportSettings
from newsclf.train.evaluation.report import number_text
from newsclf.train.tracking.promotion import Promotion

CARD_ARTIFACT = "model_card.md"
# Mistakes listed as known failure modes, per task and split.
_FAILURES = 5
# Seeded intervals: the same version always gets the same card.
CARD_SETTINGS = ReportSettings(resamples=1000, seed=0, mistakes=_FAILURES, terms=3)


def model_card(
    name: str,
    version: str,
    config: ExperimentConfig,
    splits: Splits,
    shipped: NewsClassifier,
    evaluations: dict[str, Evaluation],
    promotion: Promotion,
    run_id: str,
    split_sizes: dict[str, int] | None = None,
) -> str:
    """The Markdown card of version ``version`` from the training run's ``evaluations`` by split (made
    with :data:`CARD_SETTINGS`: the validation one of the model judged before any refit, the test one
    of the registered model). ``split_sizes`` gives the articles per split when ``splits`` holds only
    samples of them (streaming training keeps no train articles and at most ``fit.held_out_limit`` of
    the others)."""
    report = splits.report
    sizes = split_sizes or {split: len(getattr(splits, split)) for split in ("train", "validation", "test")}
    limit = config.fit.held_out_limit
    sampled = "" if split_sizes is None else f" (scored below on a seeded sample of at most {limit} each)"
    lines = [
        f"# {name} version {version}",
        "",
        f"Trained by run `{run_id}` from experiment `{config.name}`"
        + (f": {config.description.strip()}" if config.description.strip() else "."),
        "",
        "## Intended use",
        "",
        "Label English news articles with their **topic** (the 10 categories of Wikipedia's Current Events "
        "Portal) and their **tone** on a military-vs-diplomatic axis, with probabilities and the terms that "
        "drove each label: for routing, filtering and reading conflict and world news at scale. Read `tone` only "
        "where `tone_applies` is true; for a decision that matters, read the article.",
        "",
        "**Out of scope:** other languages; opinion, satire and social-media posts; judging an article's truth "
        "or bias; any decision about a person. The tone axis says how events are framed, not who is right.",
        "",
        "## Labels",
        "",
        f"- topic: {', '.join(shipped.labels('topic'))}.",
    ]
    if "tone" in shipped.tasks:
        lines.append(
            "- tone: `military` (events framed as force: fighting, strikes, troops, weapons) or `diplomatic` "
            "(framed as negotiation: talks, treaties, envoys, sanctions as policy), for articles with such a "
            "framing; `tone_applies` estimates whether an article has one. See data/ANNOTATION_GUIDELINES.md."
        )
    lines += [
        "",
        "## Data",
        "",
        f"- Source: `{report.source}` (SHA-256 `{report.fingerprint[:16]}`), {report.rows} rows read; "
        f"{report.duplicates_removed} duplicates removed, {report.skipped_empty} empty rows skipped, "
        f"{sum(report.dropped_by_label.values())} dropped by label.",
        f"- Split ({config.split.mode}, seed {config.seed}): {sizes['train']} train, "
        f"{sizes['validation']} validation, {sizes['test']} test articles{sampled}.",
        f"- Licence: {_licence(config)}",
        "",
        "## How well it does",
        "",
        "Macro-F1 and accuracy with 95% bootstrap intervals (1000 resamples); ECE is the expected "
        "calibration error of the top label's probability (0 is perfectly calibrated).",
        "",
        "| task | split | articles | macro-F1 [95% CI] | accuracy [95% CI] | log loss | ECE |",
        "|---|---|---:|---|---|---:|---:|",
    ]
    for split, evaluation in evaluations.items():
        for task, result in evaluation.tasks.items():
            m = result.metrics
            lines.append(
                f"| {task} | {split} | {m['items']} | {_ci(m, 'macro_f1')} | {_ci(m, 'accuracy')} "
                f"| {number_text(m['log_loss'])} | {number_text(m['ece'])} |"
            )
    lines += _short_texts(shipped, evaluations)
    lines += ["", "## Promotion", "", f"{promotion.verdict}: {promotion.reason}."]
    lines += ["", "## Known limits and failure modes", ""] + _limits(config, evaluations["validation"])
    return "\n".join(lines) + "\n"


def _limits(config: ExperimentConfig, validation: Evaluation) -> list[str]:
    lines = [
        "- A linear model over TF-IDF word and character n-grams: it reads vocabulary, not argument; an "
        "article quoting one side's framing to report the other's can get the quoted tone.",
        "- Topics overlap (law and crime, politics, international relations): expect confusions between them.",
        f"- Trained on data up to the end of its training split; news vocabulary drifts (split mode "
        f"`{config.split.mode}`). Re-evaluate on recent articles with `newsclf evaluate`.",
    ]
    for task, result in validation.tasks.items():
        if result.mistakes:
            lines += ["", f"The {task} model's most confident validation mistakes:", ""]
            for mistake in result.mistakes:
                terms = ", ".join(term["term"] for term in mistake["terms"]) or "no positive term"
                lines.append(
                    f"- {mistake['true']} read as {mistake['predicted']} ({mistake['probability']:.2f}; "
                    f"driven by {terms}): {mistake['excerpt'][:120]}"
                )
    return lines


def _licence(config: ExperimentConfig) -> str:
    if config.data.source == "corpus":
        return "the shipped corpus is written for this project and released under CC BY 4.0 (data/DATA_CARD.md)."
    return "that of the data source named above; check it before sharing the model."


def _ci(metrics: dict[str, Any], name: str) -> str:
    return (
        f"{number_text(metrics[name])} [{number_text(metrics.get(f'{name}_ci_low'))}, "
        f"{number_text(metrics.get(f'{name}_ci_high'))}]"
    )


def read_card(uri: str, tracking_uri: str) -> str:
    """The model card of ``models:/name@alias``, ``models:/name/version`` (its version description) or
    ``runs:/<id>/...`` (the run's ``model_card.md``)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from newsclf.errors import NewsclfError
    from newsclf.loading import registered_version

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    try:
        version = registered_version(client, uri)
    except MlflowException as exc:
        raise NewsclfError(f"model {uri} not found ({exc.message.splitlines()[0]}); pass another --model") from None
    if version is not None and version.description:
        return version.description
    if version is None and not uri.startswith("runs:/"):
        raise NewsclfError(f"{uri!r} names no registered version or run; pass models:/name@alias or runs:/id/model")
    run_id = version.run_id if version is not None else uri.removeprefix("runs:/").split("/")[0]
    try:
        with tempfile.TemporaryDirectory() as scratch:
            return Path(client.download_artifacts(run_id, CARD_ARTIFACT, dst_path=scratch)).read_text(encoding="utf-8")
    except (MlflowException, OSError) as exc:
        reason = exc.message.splitlines()[0] if isinstance(exc, MlflowException) else str(exc)
        raise NewsclfError(
            f"run {run_id} has no {CARD_ARTIFACT} ({reason}); models trained before newsclf wrote cards have "
            "none: retrain, or judge the model with newsclf evaluate"
        ) from None


def _short_texts(model: NewsClassifier, evaluations: dict[str, Evaluation]) -> list[str]:
    """What a tone score of a sentence or a headline means, and how honest it is."""
    short = model.metadata.get(SHORT_TEXT_TONE)
    measured = {
        split: evaluation.tasks["tone"].metrics
        for split, evaluation in evaluations.items()
        if "tone" in evaluation.tasks and evaluation.tasks["tone"].metrics.get("short_text_ece") is not None
    }
    if short is None and not measured:
        return []
    lines = ["", "Tone of short texts (a sentence, a headline, a short paragraph):"]
    if short is not None:
        lines.append(
            f"- tempered by {short['temperature']:.2f} up to {short['full_up_to_words']} words, fading out by "
            f"{short['none_from_words']} (articles keep their scores); fitted on {short['sentences']} validation "
            "sentences, each labelled with its article's tone"
        )
    lines += [
        f"- ECE on the {split} articles' {m['short_text_sentences']:.0f} sentences: {number_text(m['short_text_ece'])}"
        for split, m in measured.items()
    ]
    return lines
