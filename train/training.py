"""One training run: read, fit, calibrate, evaluate, log, register, promote, describe.

The run is the same for both feeds; what differs is behind :class:`_Feed`:

- in memory (the default): the articles are loaded (newsclf.train.data.loading) and fitted by
  newsclf.train.fit.in_memory (with a grid search when ``[search]`` asks), calibrated by
  cross-fitting on train;
- streamed (``[fit] mode = "streaming"``): the source is scanned (newsclf.train.data.stream) and
  fitted by ``partial_fit`` epochs (newsclf.train.fit.streaming), calibrated on training articles
  held out of the epochs; ``resume`` continues a killed run from its last checkpoint.

The store is checked first (and runs of this experiment whose process died are marked KILLED),
then the data; problems with either are raised before any run starts. Anything that fails after
that marks the MLflow run FAILED and leaves no complete version registered.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsclf._shared_tfidf import remember_features, remembering_features
from newsclf.errors import NewsclfError
from newsclf.explain import top_terms
from newsclf.hashing import is_hashed
from newsclf.model import SHORT_TEXT_TONE, NewsClassifier
from newsclf.train.config import ExperimentConfig, config_from_dict, load_config, read_settings, with_overrides
from newsclf.train.data.added import added_articles
from newsclf.train.data.articles import SPLIT_NAMES, Articles, DataError, LoadReport, Splits
from newsclf.train.data.loading import load_splits
from newsclf.train.data.sources import remove_stale_scratch
from newsclf.train.data.stream import TRAIN, Scan, StreamingError, free_large_blocks_at_once, release_memory, scan
from newsclf.train.evaluation.evaluate import Evaluation, evaluate
from newsclf.train.evaluation.figures import confusion_figure
from newsclf.train.evaluation.metrics import (
    VALIDATION_SCORE,
    grouped,
    metric_name,
    report_text,
    validation_score,
)
from newsclf.train.fit.calibration import Calibration, calibrate, log_before_after
from newsclf.train.fit.in_memory import fit_model, require_trainable, search
from newsclf.train.fit.streaming import fit_streaming, has_tone, hold_out_for_calibration, resumed_state, warm_start
from newsclf.train.jobs.card import CARD_ARTIFACT, CARD_SETTINGS, model_card
from newsclf.train.jobs.pages import log_explanation_pages
from newsclf.train.paths import DEFAULT_TRACKING_URI
from newsclf.train.progress import Clock
from newsclf.train.tracking.promotion import Promotion, current_champion, promote, require_recent
from newsclf.train.tracking.registry import describe, log_model, register
from newsclf.train.tracking.runs import (
    PID_TAG,
    connect,
    create_store,
    end_stale_runs,
    liveness,
    log_data_counts,
    log_data_report,
    log_split_metrics,
    log_streamed_inputs,
    require_running,
    run_name,
    run_tags,
    use_experiment,
)

EXPERIMENT_DESCRIPTION = (
    "newsclf training runs: topic and military/diplomatic tone classifiers, one run per `newsclf train`; "
    "each registered version's description is its model card."
)

__all__ = ["TrainResult", "run"]

# The card's evaluation; the uncalibrated model's numbers come from the calibration step's comparison.
_EVALUATION = dataclasses.replace(CARD_SETTINGS, uncalibrated=False)


@dataclass(frozen=True)
class TrainResult:
    """What one successful training produced."""

    run_id: str
    model_name: str
    version: str
    promoted: bool
    metrics: dict[str, float]
    promotion_reason: str = ""

    @property
    def model_uri(self) -> str:
        """Registry URI of the registered version."""
        return f"models:/{self.model_name}/{self.version}"


@dataclass
class _Fitted:
    """What a feed's fit hands the run: the shipped model, the one validation and promotion judge
    (``scored``: the same model, or the fit before a refit on train + validation), the held-out
    articles as :class:`Splits` (train may be empty), and what to evaluate, group by group: each
    ``(model, its uncalibrated form, {split: articles})``."""

    config: ExperimentConfig
    model: NewsClassifier
    scored: NewsClassifier
    splits: Splits
    evaluations: list[tuple[NewsClassifier, NewsClassifier, dict[str, Articles]]]
    run_only: tuple[str, ...] = ()
    split_sizes: dict[str, int] | None = None
    # Labels per task the model learnt from, for the evaluation's baselines.
    training_labels: dict[str, list] | None = None
    # The topic mix the model learnt (newsclf monitor's reference), when not that of training_labels.
    topic_mix: dict[str, float] | None = None


class _Feed:
    """How one mode reads and fits; the run around it is :func:`run`."""

    def __init__(self, config: ExperimentConfig, tracking_uri: str, resume: str | None, recent: Articles | None):
        self.config, self.tracking_uri, self.resume = config, tracking_uri, resume
        self.recent = recent  # the newest labelled window (tracking.recent_data), read once by run()

    def read(self, step: Callable[[str], None]) -> None:
        """Read and check the data, before any run starts."""
        raise NotImplementedError

    def report(self):
        """The LoadReport of what was read."""
        raise NotImplementedError

    def log_data(self) -> dict[str, Any]:
        """Log the data on the active run; the MLflow datasets by split name."""
        raise NotImplementedError

    def fit(self, metadata: dict, step: Callable[[str], None]) -> _Fitted:
        """Fit and calibrate the model on the active run."""
        raise NotImplementedError


class _InMemory(_Feed):
    def read(self, step):
        if self.resume:
            raise NewsclfError(
                f"--resume continues a streaming run; experiment {self.config.name} trains in memory "
                '(set [fit] mode = "streaming" or drop --resume)'
            )
        self.splits = load_splits(self.config.data, self.config.split, self.config.dedup, self.config.seed, step)
        require_trainable(self.config, self.splits)
        splits, report = self.splits, self.splits.report
        step(
            f"{len(splits.train)} train / {len(splits.validation)} validation / {len(splits.test)} test articles "
            f"({len(splits.train.with_tone())} train articles carry a tone); {report.duplicates_removed} duplicates "
            f"removed, {report.skipped_empty} empty rows skipped, "
            f"{sum(report.dropped_by_label.values())} dropped by label"
        )
        if added := report.review.get("added_labels"):
            corrected = ", ".join(f"{n} in {split}" for split, n in added["corrections"].items()) or "none"
            step(
                f"added labels: {added['new_articles']} new articles joined train; corrections of articles the "
                f"data has: {corrected}; {added['unchanged']} labels the data already had"
            )

    def report(self):
        return self.splits.report

    def log_data(self):
        return log_data_report(self.splits, self.config.data)

    def fit(self, metadata, step):
        config, splits = self.config, self.splits
        remember_features(splits.validation.texts + splits.test.texts)
        if config.search.grid:
            config, model = search(config, splits, step)
            model.metadata.update(metadata)
        else:
            model = fit_model(config, splits.train, splits.has_tone, step, metadata)
        step(f"calibrating probabilities ({', '.join(config.calibration.methods)}) by cross-fitting on train")
        calibration = calibrate(
            model, config.calibration, splits.train, splits.validation, config.seed, n_jobs=config.n_jobs
        )
        log_calibration(calibration, step)
        learnt = {"topic": splits.train.topics, "tone": splits.train.with_tone().tones}
        if not self.config.search.refit:  # the experiment's setting: a search candidate's config has no [search]
            calibrated = calibration.model
            both = {"validation": splits.validation, "test": splits.test}
            return _Fitted(config, calibrated, calibrated, splits, [(calibrated, model, both)], training_labels=learnt)
        step("refitting the best candidate on train + validation")
        refit_articles = splits.train.concat(splits.validation)
        refitted = fit_model(config, refit_articles, splits.has_tone, step, metadata | {"refit": True})
        shipped = calibrate(
            refitted,
            config.calibration,
            refit_articles,
            None,
            config.seed,
            calibration.methods,
            short_text_tone=calibration.model.metadata.get(SHORT_TEXT_TONE),
            n_jobs=config.n_jobs,
        ).model
        evaluations = [
            (calibration.model, model, {"validation": splits.validation}),
            (shipped, refitted, {"test": splits.test}),
        ]
        # After a refit the validation numbers are the earlier fit's, so they are not linked to the shipped model.
        return _Fitted(
            config, shipped, calibration.model, splits, evaluations, run_only=("validation",), training_labels=learnt
        )


class _Streamed(_Feed):
    def read(self, step):
        config = self.config
        free_large_blocks_at_once()
        remove_stale_scratch()
        self.state, resumed = None, None
        if self.resume:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(self.tracking_uri)
            # run() has just ended this experiment's runs whose process is gone: one still running is alive.
            resumed = _run_or_none(client, self.resume)
            if resumed is not None and resumed.info.status == "RUNNING":
                raise StreamingError(
                    f"run {self.resume} is still running (process {resumed.data.tags.get(PID_TAG, '?')}); "
                    "stop it, or wait for it to end, before resuming it"
                )
            self.state = resumed_state(client, config, self.resume)
        step("scanning the data: checking rows, de-duplicating, assigning splits")
        self.scanned: Scan = scan(config, step)
        report = self.scanned.report
        if resumed is not None:
            trained_on = resumed.data.tags.get("data_fingerprint")
            if trained_on and trained_on != report.fingerprint:
                raise StreamingError(
                    f"run {self.resume} trained on other data than {report.source} holds now (SHA-256 "
                    f"{trained_on[:12]}, now {report.fingerprint[:12]}); resume it with the data it "
                    "started with, or start a new run"
                )
        # Held out first, so every count of training articles is of those the epochs see.
        self.calibration_articles = hold_out_for_calibration(self.scanned, config)
        self.sizes = {name: int((self.scanned.split == code).sum()) for code, name in enumerate(SPLIT_NAMES)}
        if not self.sizes["train"] or not self.sizes["validation"]:
            raise DataError(
                f"{report.source}: the split leaves {self.sizes['train']} train and "
                f"{self.sizes['validation']} validation articles; move the cut-offs or add articles"
            )

    def report(self):
        return self.scanned.report

    def log_data(self):
        import mlflow

        mlflow.set_tag("newsclf.fit_mode", "streaming")
        mlflow.log_param("dataset.calibration_articles", self.calibration_articles)
        _log_scan(self.scanned, self.config, self.sizes)
        return log_streamed_inputs(self.config.data, self.scanned.report, self.sizes)

    def fit(self, metadata, step):
        import mlflow

        config = self.config
        model, held_out, state = fit_streaming(config, self.scanned, self.state, metadata, step)
        splits = Splits(
            Articles([], [], [], [], []),
            held_out["validation"],
            held_out["test"],
            self.scanned.report,
            has_tone=has_tone(config, self.scanned),
        )
        calibrated = model
        if len(held_out["calibration"]):
            step(
                f"calibrating probabilities ({', '.join(config.calibration.methods)}) on "
                f"{len(held_out['calibration'])} training articles held out of the epochs"
            )
            calibration = calibrate(
                model, config.calibration, held_out["calibration"], held_out["validation"], config.seed, held_out=True
            )
            log_calibration(calibration, step)
            calibrated = calibration.model
        else:
            mlflow.set_tag(
                "calibration.note",
                "left uncalibrated: calibration.methods is ['none'] or too few training articles to hold some out",
            )
        step(f"the epoch-{state.best_epoch} model is the one kept")
        # One split at a time: their feature matrices are never held together.
        evaluations = [(calibrated, model, {part: getattr(splits, part)}) for part in ("validation", "test")]
        train = self.scanned.split == TRAIN
        learnt = {
            "topic": [config.data.topic_labels[code] for code in self.scanned.topic[train].tolist()],
            "tone": [config.data.tone_labels[code] for code in self.scanned.tone[train].tolist() if code >= 0],
        }
        return _Fitted(
            config, calibrated, calibrated, splits, evaluations, split_sizes=self.sizes, training_labels=learnt
        )


class _WarmStart(_Feed):
    """A streaming experiment updated with new labels: the champion's weights, warm-started on the new
    articles alone (no pass over its corpus), judged on the newest labelled window."""

    def read(self, step):
        from mlflow.tracking import MlflowClient

        from newsclf.loading import load_model

        config = self.config
        name, alias = config.tracking.registered_model, config.tracking.champion_alias
        client = (
            MlflowClient(self.tracking_uri, registry_uri=self.tracking_uri) if connect(self.tracking_uri) else None
        )
        champion = current_champion(client, name, alias) if client is not None else None
        if champion is None:
            raise NewsclfError(
                f"no complete {name}@{alias} to warm-start from; train {config.name} once without --add-labels"
            )
        step(f"loading {name} version {champion.version} to warm-start from")
        self.champion = load_model(f"models:/{name}/{champion.version}", self.tracking_uri)
        if self.champion.metadata.get("fit_mode") != "streaming":
            raise NewsclfError(
                f"{name} version {champion.version} was not trained by streaming, so it has no weights to continue; "
                "update it in memory (fit.mode = 'in_memory') or train a streaming version first"
            )
        self.version = str(champion.version)
        self.fingerprint = client.get_run(champion.run_id).data.tags.get("data_fingerprint", "")
        self.added = added_articles(config.data)
        step(f"{len(self.added)} new articles to learn from, {len(self.recent)} recent ones to be judged on")

    def report(self):
        return LoadReport(source=", ".join(self.config.data.added_labels), fingerprint=self.fingerprint)

    def log_data(self):
        import mlflow

        mlflow.set_tags({"newsclf.fit_mode": "streaming warm start", "warm_start.from_version": self.version})
        return log_data_report(self._splits(), self.config.data)

    def _splits(self) -> Splits:
        return Splits(
            self.added, self.recent, Articles([], [], [], [], []), self.report(), "tone" in self.champion.tasks
        )

    def fit(self, metadata, step):
        config = self.config
        step(f"warm-starting version {self.version} on {len(self.added)} new articles, {config.fit.epochs} passes")
        model, plain = warm_start(self.champion, self.added, config, step)
        for each in (model, plain):
            each.metadata |= metadata | {"warm_start_from": self.version}
        learnt = {"topic": self.added.topics, "tone": self.added.with_tone().tones}
        return _Fitted(
            config,
            model,
            model,
            self._splits(),
            [(model, plain, {"validation": self.recent})],
            training_labels=learnt,
            topic_mix=self.champion.metadata.get("topic_mix"),
        )


def _run_or_none(client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        return None  # resumed_state says so in its own words


def train(
    experiment: str | Path | Mapping[str, Any] | ExperimentConfig = "default",
    tracking_uri: str = DEFAULT_TRACKING_URI,
    overrides: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> TrainResult:
    """Train one experiment as ``newsclf train`` does and return the run and the registered version.

    ``experiment`` is a name in ``experiments/``, a TOML path, a dict shaped as such a file, or a
    loaded config; ``overrides`` are dotted keys as ``--set`` takes them (``{"topic.C": 5}``)::

        from newsclf.train import train
        result = train("experiments/default.toml", overrides={"topic.C": 5})
        result.run_id, result.model_uri   # the MLflow run, "models:/news-classifier/4"
    """
    if isinstance(experiment, ExperimentConfig):
        config = experiment
    elif isinstance(experiment, Mapping):
        config = config_from_dict(dict(experiment), source="the experiment dict")
    else:
        config = load_config(experiment)
    if overrides:
        config = with_overrides(config, dict(overrides), "overrides")
    return run(config, tracking_uri, progress)


def run(
    config: ExperimentConfig,
    tracking_uri: str,
    progress: Callable[[str], None] = lambda message: None,
    resume: str | None = None,
) -> TrainResult:
    """Fit, evaluate, log and register topic and tone models for one experiment; promote the new
    version when it wins. ``resume`` continues a killed streaming run from its last checkpoint."""
    import mlflow
    from mlflow.tracking import MlflowClient
    from threadpoolctl import threadpool_limits

    clock = Clock(progress)
    streaming = config.fit.mode == "streaming"
    kind = _InMemory if not streaming else _WarmStart if config.data.added_labels else _Streamed
    if connect(tracking_uri):
        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name(config.tracking.experiment)
        for stale in end_stale_runs(client, [experiment.experiment_id] if experiment else []):
            clock.step(f"marked run {stale.run_id} ({stale.name}) KILLED: {stale.reason}")
    clock.step("loading data")
    recent = require_recent(config)
    feed = kind(config, tracking_uri, resume, recent)
    feed.read(clock.step)
    report = feed.report()

    mlflow.set_tracking_uri(tracking_uri)
    create_store(tracking_uri)
    use_experiment(config.tracking.experiment, EXPERIMENT_DESCRIPTION)
    with (
        mlflow.start_run(run_id=resume, run_name=None if resume else run_name(config)) as active,
        liveness(tracking_uri, active.info.run_id),
        # Held-out articles are scored in every epoch, by calibration, evaluation, the pages and promotion:
        # their features are computed once (the feeds name them).
        remembering_features(),
        # One BLAS thread: its dense products here are small, and OpenBLAS's idle threads spin between them
        # (a third of a streaming run's CPU time on CEP, for no gain in wall time). Parallel work is n_jobs'.
        threadpool_limits(limits=1, user_api="blas"),
    ):
        run_id = active.info.run_id
        mlflow.log_params(read_settings(config))
        mlflow.set_tags(run_tags(config, report))
        datasets = feed.log_data()
        # The tone labels' order says which one tone_score measures (NewsClassifier.tone_poles).
        metadata = {"experiment": config.name, "run_id": run_id, "tone_labels": list(config.data.tone_labels)}
        fitted = feed.fit(metadata, clock.step)
        config = fitted.config
        # What newsclf monitor compares each window's predicted topic mix against.
        topics = Counter(fitted.training_labels["topic"])
        mix = fitted.topic_mix or {topic: n / sum(topics.values()) for topic, n in sorted(topics.items())}
        for model in {id(fitted.model): fitted.model, id(fitted.scored): fitted.scored}.values():
            model.metadata["topic_mix"] = mix
        clock.step("evaluating on validation and test")
        metrics: dict[str, float] = {}
        evaluations: dict[str, Evaluation] = {}
        for model, uncalibrated, parts in fitted.evaluations:
            found, evaluated = evaluate_and_log(model, uncalibrated, parts, fitted.training_labels)
            metrics |= found
            evaluations |= evaluated
            release_memory()
        splits = fitted.splits
        log_explanation_pages(fitted.scored, splits.validation, run_id, evaluations.get("validation"))
        clock.step("logging the model")
        examples = splits.validation.texts[:2] or splits.test.texts[:2]
        info, score = log_model_with_metrics(fitted.model, metrics, datasets, examples, fitted.run_only)
        name = config.tracking.registered_model
        require_running(MlflowClient(tracking_uri), run_id)  # a sweep elsewhere may have judged it dead
        clock.step(f"registering {name}")
        version = register(
            info.model_uri, name, {"validation_score": f"{score:.6f}", "data_fingerprint": report.fingerprint}
        )
        clock.step(f"comparing version {version} with @{config.tracking.champion_alias}")
        promotion = promote(fitted.scored, version, splits, config, tracking_uri, recent)
        log_promotion(promotion, name, version, tracking_uri)
        clock.step("writing the model card")
        card = model_card(
            name, version, config, splits, fitted.model, evaluations, promotion, run_id, fitted.split_sizes
        )
        mlflow.log_text(card, CARD_ARTIFACT)
        describe(name, version, card)
        mlflow.set_tags({"registered_version": version, "promoted": str(promotion.promoted).lower()})
    clock.step(
        f"done: {name} version {version}"
        + (
            f" is now @{config.tracking.champion_alias}"
            if promotion.promoted
            else f" not promoted: {promotion.reason}"
        )
    )
    return TrainResult(
        run_id, name, version, promotion.promoted, metrics | {VALIDATION_SCORE: score}, promotion.reason
    )


def log_calibration(calibration: Calibration, progress: Callable[[str], None]) -> None:
    """The method kept per output as params and tags, each candidate's validation log loss as metrics."""
    import mlflow

    mlflow.log_params(calibration.params())
    mlflow.set_tags(
        calibration.params() | {f"calibration.note.{task}": note for task, note in calibration.notes.items()}
    )
    mlflow.log_metrics(
        {
            metric_name("calibration", task, "validation_log_loss", method): loss
            for task, losses in calibration.validation_log_loss.items()
            for method, loss in losses.items()
        }
    )
    kept = ", ".join(f"{task} {method}" for task, method in calibration.methods.items())
    if short := calibration.model.metadata.get(SHORT_TEXT_TONE):
        mlflow.log_params({"calibration.short_text_tone.temperature": short["temperature"]})
        kept += f"; short-text tone temperature {short['temperature']:.2f} ({short['sentences']} validation sentences)"
    progress("calibration kept: " + kept)


def log_promotion(promotion: Promotion, name: str, version: str, tracking_uri: str) -> None:
    """The verdict and its reason on the run and on the version, the comparison's numbers on the run."""
    import mlflow
    from mlflow.tracking import MlflowClient

    if promotion.comparison is not None:
        mlflow.log_metrics(promotion.comparison.flat_metrics("promotion"))
    if promotion.recent is not None:
        mlflow.log_metrics(promotion.recent.flat_metrics("promotion_recent"))
    verdict = {"promotion_verdict": promotion.verdict, "promotion_reason": promotion.reason}
    mlflow.set_tags(verdict | ({"promotion_reference": promotion.reference} if promotion.reference else {}))
    client = MlflowClient(tracking_uri)
    for key, value in verdict.items():
        client.set_model_version_tag(name, version, key, value)


def evaluate_and_log(
    model: NewsClassifier,
    uncalibrated: NewsClassifier,
    parts: dict[str, Articles],
    training_labels: dict[str, list] | None,
) -> tuple[dict[str, float], dict[str, Evaluation]]:
    """:func:`newsclf.train.evaluation.evaluate.evaluate` of ``model`` on each named split, with its
    report artifacts, reliability diagrams and top terms (not of hashed blocks) logged; the metrics
    (``<split>/<task>/<metric>``, the set ``newsclf evaluate`` logs per task) and the evaluations returned."""
    import matplotlib.pyplot as plt
    import mlflow

    metrics: dict[str, float] = {}
    evaluations = {}
    for task in model.tasks:
        if not is_hashed(model.pipelines[task]):  # hashed columns have no names to rank
            mlflow.log_dict(top_terms(model.pipelines[task]), f"{task}/top_terms.json")
    for split_name, articles in parts.items():
        if not len(articles):
            continue
        evaluation = evaluations[split_name] = evaluate(model, articles, _EVALUATION, training_labels)
        metrics |= grouped(evaluation.summary_metrics(), split_name)
        for task, result in evaluation.tasks.items():
            columns = result.labels[: result.proba.shape[1]]
            mlflow.log_text(
                report_text(result.y_true, result.proba, columns), f"{task}/classification_report_{split_name}.txt"
            )
            if task in model.tasks:
                title = f"{task}: {split_name} ({len(result.y_true)} articles)"
                figure = confusion_figure(result.y_true, result.proba, columns, title)
                mlflow.log_figure(figure, f"{task}/confusion_matrix_{split_name}.png")
                plt.close(figure)
    # The served model's numbers win where both name one: its tone is tempered on short texts, which
    # the calibration step's classifier-level numbers know nothing of.
    return log_before_after(uncalibrated, model, parts) | metrics, evaluations


def log_model_with_metrics(
    model: NewsClassifier,
    metrics: dict[str, float],
    datasets: dict[str, Any],
    example_texts: list[str],
    run_only: tuple[str, ...] = (),
) -> tuple[Any, float]:
    """Log ``model``, then ``metrics`` and the validation score (the number promotion ranks by), linked to
    the logged model and each split's dataset in ``datasets``; splits in ``run_only`` stay on the run alone.
    The model info and the score returned. Streaming training logs with it too."""
    info = log_model(model, example_texts)
    score = validation_score(metrics, model.tasks)
    log_split_metrics(metrics | {VALIDATION_SCORE: score}, datasets, info.model_id, run_only)
    return info, score


def _log_scan(scanned: Scan, config: ExperimentConfig, sizes: dict[str, int]) -> None:
    """Counts per split (``sizes``) and label, what de-duplication and the bad rows removed, on the active run."""
    import mlflow

    report = scanned.report
    summary: dict[str, Any] = {
        "source": report.source,
        "rows_read": report.rows,
        "skipped_empty_text": report.skipped_empty,
        "dropped_by_label": report.dropped_by_label,
        "bad_rows_skipped": scanned.bad_rows,
        "bad_row_examples": scanned.bad_examples,
        "duplicates_removed": report.duplicates_removed,
        "deduplication": scanned.dedup | {"bytes_per_article": scanned.dedup_bytes_per_article},
        "splits": {},
    }
    for code, name in enumerate(SPLIT_NAMES):
        chosen = scanned.split == code
        topics = Counter(scanned.topic[chosen].tolist())
        tones = Counter(scanned.tone[chosen].tolist())
        summary["splits"][name] = {
            "articles": sizes[name],
            "topics": {config.data.topic_labels[i]: n for i, n in sorted(topics.items())},
            "tones": {("none" if i < 0 else config.data.tone_labels[i]): n for i, n in sorted(tones.items())},
        }
    mlflow.log_dict(summary, "data/summary.json")
    log_data_counts(report, sizes, bad_rows_skipped=scanned.bad_rows)
