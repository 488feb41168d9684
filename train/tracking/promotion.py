"""Promotion: move the champion alias to a new version only when it is significantly better, judged
on articles neither model trained on, as a compare-and-set.

The two models are compared on a *reference set*: the experiment's ``tracking.reference_data`` when
it names one, else the champion's own validation split. When the candidate trained on the same
data, split and seed as the champion, that split is the candidate's validation split too;
otherwise it is rebuilt from the champion's training run (as ``newsclf evaluate`` rebuilds a test
split). A candidate that trained on any of the reference articles, or a champion whose reference
data is gone or changed, is not promoted, and the run says why.

The alias moves under a lock around re-reading the champion, (re)comparing and moving, so two
trainings finishing together cannot both win: with a SQLite or file store the lock is an OS file
lock beside the store; a tracking server has no lock to offer, so there the champion is re-read
right before the move, which narrows the window to one round trip but cannot close it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from newsclf.errors import NewsclfError
from newsclf.model import NewsClassifier
from newsclf.train.config import ExperimentConfig
from newsclf.train.data.articles import Articles, DataError, Splits
from newsclf.train.data.loading import load_articles, load_splits
from newsclf.train.evaluation.comparison import BETTER, NO_DIFFERENCE, WORSE, Comparison, compare_models
from newsclf.train.tracking.registry import is_complete
from newsclf.train.tracking.runs import run_config, store_lock

# How long a promotion waits for another one to finish before giving up.
FIRST, NOT_COMPARED = "first version", "not compared"
_COMPARED = {BETTER: "better than", WORSE: "worse than", NO_DIFFERENCE: "no significant difference from"}


@dataclass(frozen=True)
class Promotion:
    """What promotion decided, against which champion, on which articles, and why."""

    promoted: bool
    verdict: str
    reason: str
    champion_version: str | None = None
    reference: str = ""
    comparison: Comparison | None = None
    # On tracking.recent_data, when the experiment names it: the gate after new labels.
    recent: Comparison | None = None


def promote(
    candidate: NewsClassifier,
    version: str,
    splits: Splits,
    config: ExperimentConfig,
    tracking_uri: str,
    recent: Articles | None = None,
) -> Promotion:
    """Judge the registered ``version`` (whose pre-refit model is ``candidate``) against the champion
    and move the alias to it if it is better; the first complete version becomes champion. With
    ``recent`` (:func:`require_recent`'s articles), the gate after new labels decides."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    name, alias = config.tracking.registered_model, config.tracking.champion_alias
    judged = _judge(client, candidate, splits, config, tracking_uri, current_champion(client, name, alias), recent)
    with promotion_lock(tracking_uri, name):
        current = current_champion(client, name, alias)
        if _version_of(current) != judged.champion_version:  # someone promoted meanwhile: judge against them
            judged = _judge(client, candidate, splits, config, tracking_uri, current, recent)
        if judged.promoted:
            client.set_registered_model_alias(name, alias, version)
    return judged


def promotion_lock(tracking_uri: str, name: str) -> contextlib.AbstractContextManager:
    """Exclusive access to ``name``'s alias among the processes on this machine that use a local store."""
    return store_lock(tracking_uri, f"promotion-{name}", f"another training has been promoting {name}")


def _judge(
    client,
    candidate: NewsClassifier,
    splits: Splits,
    config: ExperimentConfig,
    tracking_uri: str,
    champion,
    recent: Articles | None,
):
    from newsclf.loading import load_model

    if champion is None:
        return Promotion(True, FIRST, "no complete champion to compare with")
    champion_version = str(champion.version)
    reference, description, problem = _reference(client, config, splits, champion)
    if problem:
        return Promotion(False, NOT_COMPARED, problem, champion_version, description)
    overlap = len(set(reference.texts) & set(splits.train.texts))
    if overlap:
        reason = f"the candidate trained on {overlap} of the {len(reference)} reference articles ({description})"
        return Promotion(False, NOT_COMPARED, reason + "; it cannot be judged fairly on them", champion_version)
    if recent is not None:
        recent_description, problem = _recent_problem(recent, config.tracking.recent_data, splits)
        if problem:
            return Promotion(False, NOT_COMPARED, problem, champion_version, description)
    reigning = load_model(f"models:/{champion.name}/{champion_version}", tracking_uri)
    comparison = compare_models(reigning, candidate, reference, seed=config.seed)
    reason = _said(comparison, champion_version, len(reference), description)
    if recent is None:
        return Promotion(
            comparison.verdict == BETTER, comparison.verdict, reason, champion_version, description, comparison
        )
    on_recent = compare_models(reigning, candidate, recent, seed=config.seed)
    promoted = passes_gate(on_recent, comparison)
    verdict = WORSE if comparison.verdict == WORSE else on_recent.verdict
    reason = f"{_said(on_recent, champion_version, len(recent), recent_description)}; {reason}"
    return Promotion(promoted, verdict, reason, champion_version, description, comparison, on_recent)


def passes_gate(on_recent: Comparison, on_reference: Comparison) -> bool:
    """The gate after new labels: significantly better where the news is now (the newest labelled
    window) and not significantly worse where it was (the old reference)."""
    return on_recent.verdict == BETTER and on_reference.verdict != WORSE


def _said(comparison: Comparison, champion_version: str, articles: int, description: str) -> str:
    return (
        f"{_COMPARED[comparison.verdict]} version {champion_version} on {articles} {description} "
        f"(score {comparison.candidate_score:.4f} vs {comparison.reference_score:.4f}, p = {comparison.p_value:.3g})"
    )


def require_recent(config: ExperimentConfig) -> Articles | None:
    """The articles of ``tracking.recent_data`` (None when the experiment names none), read once before
    any training so that a missing or unreadable file is one line then, not a surprise at promotion."""
    source = config.tracking.recent_data
    if not source:
        return None
    if not source.startswith("hub:") and not Path(source).exists():
        raise DataError(f"recent labelled file not found: {source}; pass --recent with the newest labelled window")
    data = dataclasses.replace(
        config.data, source=source, corrections="", label_issues="", exclude_label_issues=0.0, added_labels=()
    )
    try:
        return load_articles(data, tone_optional=True)[0]
    except NewsclfError as exc:
        raise DataError(f"--recent (tracking.recent_data): {exc}") from None


def _recent_problem(recent: Articles, source: str, splits: Splits) -> tuple[str, str]:
    """What the newest labelled window is, and why the candidate cannot be judged on it (empty when it can)."""
    description = f"recent articles of tracking.recent_data {source}"
    overlap = len(set(recent.texts) & set(splits.train.texts))
    if not overlap:
        return description, ""
    return description, (
        f"the candidate trained on {overlap} of the {len(recent)} {description}; keep the newest labelled "
        "window out of --add-labels so the gate can judge on it"
    )


def _reference(client, config: ExperimentConfig, splits: Splits, champion) -> tuple[Articles, str, str]:
    """The articles to compare on, what they are, and why there are none (empty when there are)."""
    if config.tracking.reference_data:
        source = config.tracking.reference_data
        try:
            articles, _, _ = load_articles(dataclasses.replace(config.data, source=source), tone_optional=True)
        except DataError as exc:
            return Articles([], [], [], [], []), f"articles of {source}", f"the reference data cannot be read ({exc})"
        return articles, f"articles of tracking.reference_data {source}", ""
    trained = run_config(client, champion.run_id) if champion.run_id else None
    description = f"validation articles of version {champion.version}"
    if trained is None:
        return Articles([], [], [], [], []), description, _no_reference(champion, "its training run is unknown")
    fingerprint = client.get_run(champion.run_id).data.tags.get("data_fingerprint")
    same = (trained.data, trained.split, trained.dedup, trained.seed) == (
        config.data,
        config.split,
        config.dedup,
        config.seed,
    )
    if same and fingerprint == splits.report.fingerprint:
        return splits.validation, description, ""
    try:
        rebuilt = load_splits(trained.data, trained.split, trained.dedup, trained.seed)
    except DataError as exc:
        return Articles([], [], [], [], []), description, _no_reference(champion, f"its data cannot be read ({exc})")
    if rebuilt.report.fingerprint != fingerprint:
        return Articles([], [], [], [], []), description, _no_reference(champion, f"{trained.data.source} changed")
    return rebuilt.validation, description, ""


def _no_reference(champion, why: str) -> str:
    return (
        f"version {champion.version}'s validation split cannot be rebuilt: {why}; set tracking.reference_data "
        "to labelled articles neither model trained on, or compare them with newsclf evaluate --compare"
    )


def current_champion(client, name: str, alias: str):
    """The complete version behind ``alias``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return version if is_complete(version) else None


def _version_of(champion) -> str | None:
    return None if champion is None else str(champion.version)
