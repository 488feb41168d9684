"""Train both tasks, track the run in MLflow, register the model and promote it when it wins."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from newsclf.errors import NewsclfError
from newsclf.explain import top_terms
from newsclf.hashing import is_hashed
from newsclf.model import APPLIES, NOT_APPLICABLE, NewsClassifier
from newsclf.steps import classifier_of, features_of
from train.calibration import Calibration, calibrate, log_before_after
from train.card import CARD_ARTIFACT, model_card
from train.config import ExperimentConfig, flatten, search_candidates
from train.data import Articles, DataError, Splits, load_splits
from train.explanation_pages import log_explanation_pages
from train.figures import confusion_figure
from train.metrics import (
    VALIDATION_SCORE,
    grouped,
    metric_name,
    model_scores,
    report_text,
    selection_score,
    task_metrics,
    validation_score,
)
from train.pipeline import build_pipeline, fit_pipeline, fit_tone_applies
from train.promotion import Promotion, promote
from train.registry import describe, log_model, register
from train.tracking import (
    connect,
    end_stale_runs,
    liveness,
    log_data_report,
    log_split_metrics,
    run_name,
    run_tags,
    use_experiment,
)

EXPERIMENT_DESCRIPTION = (
    "newsclf training runs: topic and military/diplomatic tone classifiers, one run per `newsclf train`; "
    "each registered version's description is its model card."
)


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


def train(
    config: ExperimentConfig,
    tracking_uri: str,
    progress: Callable[[str], None] = lambda message: None,
    resume: str | None = None,
) -> TrainResult:
    """Fit, evaluate, log and register topic and tone models for one experiment.

    The store is checked first (and runs of this experiment whose process died are marked
    KILLED), then the data; problems with either are raised before any run starts. Anything that
    fails after that marks the MLflow run FAILED and leaves no complete version registered.
    With ``[fit] mode = "streaming"`` the data is streamed instead (train/streaming.py), and
    ``resume`` continues that killed run from its last checkpoint.
    """
    if config.fit.mode == "streaming":
        from train.streaming import train_streaming

        return train_streaming(config, tracking_uri, progress, resume)
    if resume:
        raise NewsclfError(
            f"--resume continues a streaming run; experiment {config.name} trains in memory "
            '(set [fit] mode = "streaming" or drop --resume)'
        )
    import mlflow
    from mlflow.tracking import MlflowClient

    refit = config.search.refit
    clock = _Clock(progress)
    if connect(tracking_uri):
        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name(config.tracking.experiment)
        for stale in end_stale_runs(client, [experiment.experiment_id] if experiment else []):
            clock.step(f"marked run {stale.run_id} ({stale.name}) KILLED: {stale.reason}")
    clock.step("loading data")
    splits = load_splits(config.data, config.split, config.dedup, config.seed, clock.step)
    tone_train = splits.train.with_tone()
    _require_two_classes("topic", splits.train.topics)
    _require_feasible_df(config, "topic", len(splits.train))
    if splits.has_tone:
        _require_two_classes("tone", tone_train.tones)
        _require_feasible_df(config, "tone", len(tone_train))
    report = splits.report
    clock.step(
        f"{len(splits.train)} train / {len(splits.validation)} validation / {len(splits.test)} test articles "
        f"({len(tone_train)} train articles carry a tone); {report.duplicates_removed} duplicates removed, "
        f"{report.skipped_empty} empty rows skipped, {sum(report.dropped_by_label.values())} dropped by label"
    )

    mlflow.set_tracking_uri(tracking_uri)
    use_experiment(config.tracking.experiment, EXPERIMENT_DESCRIPTION)
    with mlflow.start_run(run_name=run_name(config)) as run, liveness(tracking_uri, run.info.run_id):
        mlflow.log_params(flatten(config))
        mlflow.set_tags(run_tags(config, report))
        datasets = log_data_report(splits, config.data)

        metadata = {"experiment": config.name, "run_id": run.info.run_id}
        if config.search.grid:
            config, model = _search(config, splits, clock)
            model.metadata.update(metadata)
        else:
            model = fit_model(config, splits.train, splits.has_tone, clock.step, metadata)
        clock.step(f"calibrating probabilities ({', '.join(config.calibration.methods)}) by cross-fitting on train")
        calibration = calibrate(model, config.calibration, splits.train, splits.validation, config.seed)
        log_calibration(calibration, clock.step)
        uncalibrated_model, model = model, calibration.model
        clock.step("evaluating on validation and test")
        scored = model  # validation scores and promotion judge the model that never saw validation
        if refit:
            parts = {"validation": splits.validation}
            metrics = evaluate_and_log(model, uncalibrated_model, parts)
            clock.step("refitting the best candidate on train + validation")
            refit_articles = splits.train.concat(splits.validation)
            uncalibrated_model = fit_model(
                config, refit_articles, splits.has_tone, clock.step, metadata | {"refit": True}
            )
            model = calibrate(
                uncalibrated_model, config.calibration, refit_articles, None, config.seed, calibration.methods
            ).model
            parts = {"test": splits.test}
            metrics |= evaluate_and_log(model, uncalibrated_model, parts)
        else:
            parts = {"validation": splits.validation, "test": splits.test}
            metrics = evaluate_and_log(model, uncalibrated_model, parts)
        log_explanation_pages(scored, splits.validation, run.info.run_id)
        clock.step("logging the model")
        # After a refit the validation numbers are the earlier fit's, so they are not linked to this model.
        run_only = ("validation",) if refit else ()
        info, score = log_model_with_metrics(model, metrics, datasets, splits.validation.texts[:2], run_only)
        name = config.tracking.registered_model
        clock.step(f"registering {name}")
        tags = {"validation_score": f"{score:.6f}", "data_fingerprint": report.fingerprint}
        version = register(info.model_uri, name, tags)
        clock.step(f"comparing version {version} with @{config.tracking.champion_alias}")
        promotion = promote(scored, version, splits, config, tracking_uri)
        log_promotion(promotion, name, version, tracking_uri)
        clock.step("writing the model card")
        card = model_card(name, version, config, splits, scored, model, promotion, run.info.run_id)
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
        run.info.run_id, name, version, promotion.promoted, metrics | {VALIDATION_SCORE: score}, promotion.reason
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
    progress("calibration kept: " + ", ".join(f"{task} {method}" for task, method in calibration.methods.items()))


def log_promotion(promotion: Promotion, name: str, version: str, tracking_uri: str) -> None:
    """The verdict and its reason on the run and on the version, the comparison's numbers on the run."""
    import mlflow
    from mlflow.tracking import MlflowClient

    if promotion.comparison is not None:
        mlflow.log_metrics(promotion.comparison.flat_metrics("promotion"))
    verdict = {"promotion_verdict": promotion.verdict, "promotion_reason": promotion.reason}
    mlflow.set_tags(verdict | ({"promotion_reference": promotion.reference} if promotion.reference else {}))
    client = MlflowClient(tracking_uri)
    for key, value in verdict.items():
        client.set_model_version_tag(name, version, key, value)


def fit_model(
    config: ExperimentConfig,
    articles: Articles,
    has_tone: bool,
    progress: Callable[[str], None] = lambda message: None,
    metadata: dict | None = None,
) -> NewsClassifier:
    """The model ``make train`` ships, fitted on ``articles``: topic, and with ``has_tone`` tone and tone-applies.

    No MLflow: training's ``[search.grid]`` candidates and the bench's "ours" are fitted by this same function.
    """
    progress(f"fitting topic model on {len(articles)} articles")
    topic, topic_features = _fit_task(config, "topic", articles.texts, articles.topics)
    tone = None
    if has_tone:
        toned = articles.with_tone()
        progress(f"fitting tone model on {len(toned)} articles")
        tone, _ = _fit_task(config, "tone", toned.texts, toned.tones)
        progress("fitting the tone-applies model on the topic features")
        applies = fit_tone_applies(topic_features, articles.tones, config.tone, config.seed)
        return NewsClassifier(topic, tone, metadata=metadata, tone_applies=applies)
    return NewsClassifier(topic, None, metadata=metadata)


def _require_feasible_df(config: ExperimentConfig, task: str, n: int) -> None:
    """Document-frequency limits that ``n`` training articles cannot meet, as one line naming the
    setting (scikit-learn says it only as a traceback from inside the fit)."""
    for block, settings in (("word", config.features.word), ("char", config.features.char)):
        low = settings.min_df if isinstance(settings.min_df, int) else settings.min_df * n
        if settings.enabled and settings.max_df * n < low:
            raise NewsclfError(
                f"features.{block}: min_df = {settings.min_df} asks for n-grams in {low:g} of the {n} {task} "
                f"training articles, more than max_df = {settings.max_df} allows; lower min_df or add articles"
            )


def _fit_task(config: ExperimentConfig, task: str, texts: list[str], labels: list):
    """fit_pipeline for one task, with vocabulary problems said as one line."""
    n = len(texts)
    _require_feasible_df(config, task, n)
    try:
        return fit_pipeline(
            build_pipeline(config.features, getattr(config, task), config.seed), texts, labels, config.n_jobs
        )
    except ValueError as exc:
        if "no terms remain" not in str(exc):
            raise
        raise NewsclfError(
            f"features: no n-gram is in enough of the {n} {task} training articles to pass min_df; "
            "lower features.word.min_df / features.char.min_df or add articles"
        ) from None


def _search(config: ExperimentConfig, splits: Splits, clock: _Clock) -> tuple[ExperimentConfig, NewsClassifier]:
    """Fit every grid candidate on train, score it on validation in a nested run; return the best and its model.

    Candidates are fitted through joblib: one after another here, or all at once on the Dask cluster that
    ``newsclf train --cluster`` opens (train.cluster). Either way each nested run is logged from this process.
    """
    import joblib
    import mlflow

    from train.cluster import candidate_backend

    candidates = search_candidates(config)
    if config.search.origins:
        return _rolling_search(config, candidates, splits, clock)
    best_score, best, best_model = -1.0, candidates[0], None
    with candidate_backend():
        fitted = joblib.Parallel(return_as="generator")(
            joblib.delayed(_fit_candidate)(candidate, splits.train, splits.validation, splits.has_tone)
            for _, candidate in candidates
        )
        for number, (overrides, candidate) in enumerate(candidates, start=1):
            clock.step(f"search candidate {number}/{len(candidates)}: {overrides}")
            model, scores = next(fitted)
            with mlflow.start_run(run_name=f"candidate-{number}", nested=True):
                mlflow.log_params(overrides)
                score = selection_score(scores)
                mlflow.log_metrics(
                    {metric_name("validation", task, "macro_f1"): value for task, value in scores.items()}
                    | {VALIDATION_SCORE: score}
                )
            if score > best_score:
                best_score, best, best_model = score, (overrides, candidate), model
    mlflow.log_params({f"search.best.{key}": value for key, value in best[0].items()})
    mlflow.log_metric(metric_name("search", "best_validation_score"), best_score)
    clock.step(f"best candidate: {best[0]} (validation score {best_score:.4f})")
    return best[1], best_model


def _rolling_search(
    config: ExperimentConfig, candidates: list, splits: Splits, clock: _Clock
) -> tuple[ExperimentConfig, NewsClassifier]:
    """``_search`` with rolling-origin folds (train.rolling): each candidate fitted and scored once per
    fold, ranked by its mean score, the narrowest within the best one's spread kept and fitted on train."""
    import joblib
    import mlflow

    from train.cluster import candidate_backend
    from train.rolling import choose, rolling_folds

    folds = rolling_folds(splits.train.concat(splits.validation), config.search.origins)
    clock.step(
        "rolling-origin folds: "
        + ", ".join(f"<= {fold.origin}: {len(fold.fit)} fit / {len(fold.scored)} scored" for fold in folds)
    )
    ranked = []
    with candidate_backend():
        fitted = joblib.Parallel(return_as="generator")(
            joblib.delayed(_rolling_candidate)(candidate, folds, splits.has_tone) for _, candidate in candidates
        )
        for number, (overrides, _) in enumerate(candidates, start=1):
            clock.step(f"search candidate {number}/{len(candidates)}: {overrides}")
            found = next(fitted)
            ranked.append(found)
            with mlflow.start_run(run_name=f"candidate-{number}", nested=True):
                mlflow.log_params(overrides)
                mlflow.log_metrics(
                    {metric_name("fold", str(fold.origin), "score"): score for fold, score in zip(folds, found.scores)}
                    | {
                        VALIDATION_SCORE: found.mean,
                        metric_name("validation", "score_spread"): found.spread,
                        "features": found.width,
                    }
                )
    kept = choose(ranked)
    overrides, best = candidates[kept]
    top = max(ranked, key=lambda candidate: candidate.mean)
    mlflow.log_params({f"search.best.{key}": value for key, value in overrides.items()})
    mlflow.log_metrics(
        {
            metric_name("search", "best_validation_score"): ranked[kept].mean,
            metric_name("search", "best_validation_score_spread"): ranked[kept].spread,
        }
    )
    clock.step(
        f"kept candidate {kept + 1}: {overrides} (mean {ranked[kept].mean:.4f} +- {ranked[kept].spread:.4f}, "
        f"{ranked[kept].width} features; top mean {top.mean:.4f} +- {top.spread:.4f}); fitting it on train"
    )
    return best, fit_model(best, splits.train, splits.has_tone, clock.step)


def _rolling_candidate(candidate: ExperimentConfig, folds: list, has_tone: bool):
    """One candidate's selection score on each rolling-origin fold, and its width on the last (largest) fold."""
    from train.rolling import Ranked

    scores = []
    for fold in folds:
        model = fit_model(candidate, fold.fit, has_tone and any(tone is not None for tone in fold.fit.tones))
        scores.append(selection_score(model_scores(model, fold.scored)))
    width = sum(classifier_of(pipeline).n_features_in_ for pipeline in model.pipelines.values())
    return Ranked(tuple(scores), width)


def _fit_candidate(
    candidate: ExperimentConfig, train: Articles, validation: Articles, has_tone: bool
) -> tuple[NewsClassifier, dict[str, float]]:
    """One search candidate fitted on ``train`` and its scores on ``validation``: a task of its own, so that
    a cluster can run it (and score it, rather than ship the validation predictions back)."""
    model = fit_model(candidate, train, has_tone)
    return model, model_scores(model, validation)


class _Clock:
    def __init__(self, progress: Callable[[str], None]):
        self._progress, self._start = progress, time.perf_counter()

    def step(self, message: str) -> None:
        self._progress(f"[{time.perf_counter() - self._start:6.1f}s] {message}")


def _require_two_classes(task: str, labels: list) -> None:
    present = sorted(set(labels))
    if len(present) < 2:
        raise DataError(
            f"task {task}: the training split has {len(labels)} labelled articles and classes {present}; "
            "a classifier needs at least two classes, so add articles of the missing labels"
        )


def evaluate_and_log(
    model: NewsClassifier, uncalibrated: NewsClassifier, parts: dict[str, Articles]
) -> dict[str, float]:
    """Report artifacts and reliability diagrams of ``model`` on each named split and its top terms (not of
    hashed blocks), logged; the metrics returned, for :func:`log_model_with_metrics`. Streaming training
    evaluates with it too."""
    import matplotlib.pyplot as plt
    import mlflow

    metrics: dict[str, float] = {}
    topic_features: dict[str, Any] = {}  # per split, for the tone-applies model, which reads them too
    for task in model.tasks:
        labels = model.labels(task)
        pipeline = model.pipelines[task]
        if not is_hashed(pipeline):  # hashed columns have no names to rank
            mlflow.log_dict({label: terms for label, terms in top_terms(pipeline).items()}, f"{task}/top_terms.json")
        for split_name, articles in parts.items():
            scored, y_true = articles.for_task(task)
            if not len(scored):
                continue
            features = features_of(pipeline).transform(scored.texts)
            if task == "topic":
                topic_features[split_name] = features
            proba = classifier_of(pipeline).predict_proba(features)
            metrics |= grouped(task_metrics(y_true, proba, labels), split_name, task)
            mlflow.log_text(report_text(y_true, proba, labels), f"{task}/classification_report_{split_name}.txt")
            figure = confusion_figure(y_true, proba, labels, f"{task}: {split_name} ({len(scored)} articles)")
            mlflow.log_figure(figure, f"{task}/confusion_matrix_{split_name}.png")
            plt.close(figure)
    return metrics | _tone_applies_metrics(model, parts, topic_features) | log_before_after(uncalibrated, model, parts)


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


def _tone_applies_metrics(
    model: NewsClassifier, parts: dict[str, Articles], topic_features: dict[str, Any]
) -> dict[str, float]:
    """How well the tone-applies model tells articles that carry a tone from the rest, per split."""
    if model.tone_applies is None:
        return {}
    labels = [str(label) for label in model.tone_applies.classes_]
    metrics = {}
    for split_name, features in topic_features.items():
        y_true = [NOT_APPLICABLE if tone is None else APPLIES for tone in parts[split_name].tones]
        proba = model.tone_applies.predict_proba(features)
        metrics |= grouped(task_metrics(y_true, proba, labels), split_name, "tone_applies")
    return metrics
