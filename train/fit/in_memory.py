"""The in-memory fitter: every article in memory, the experiment's pipelines fitted with ``fit``,
optionally a grid search over candidates (validation or rolling-origin folds) first.

No MLflow tracking here except the search's nested candidate runs: the training run
(newsclf.train.training) calibrates, evaluates, logs and registers what this fits; audit's
out-of-sample fits and the bench's "ours" are fitted by :func:`fit_model` too.
"""

from __future__ import annotations

from collections.abc import Callable

from newsclf.errors import NewsclfError
from newsclf.model import NewsClassifier
from newsclf.steps import classifier_of
from newsclf.train.config import ExperimentConfig, search_candidates
from newsclf.train.data.articles import Articles, DataError, Splits
from newsclf.train.evaluation.evaluate import macro_f1_scores
from newsclf.train.evaluation.metrics import VALIDATION_SCORE, metric_name, selection_score
from newsclf.train.fit.pipeline import build_pipeline, fit_pipeline, fit_tone_applies

__all__ = ["fit_model", "require_trainable", "search"]


def require_trainable(config: ExperimentConfig, splits: Splits) -> None:
    """Refuse, before any run starts, a training split the fit cannot learn from: fewer than two
    classes of a task, or document-frequency limits its articles cannot meet."""
    _require_two_classes("topic", splits.train.topics)
    _require_feasible_df(config, "topic", len(splits.train))
    if splits.has_tone:
        tone_train = splits.train.with_tone()
        _require_two_classes("tone", tone_train.tones)
        _require_feasible_df(config, "tone", len(tone_train))


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


def _require_two_classes(task: str, labels: list) -> None:
    present = sorted(set(labels))
    if len(present) < 2:
        raise DataError(
            f"task {task}: the training split has {len(labels)} labelled articles and classes {present}; "
            "a classifier needs at least two classes, so add articles of the missing labels"
        )


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


def search(
    config: ExperimentConfig, splits: Splits, step: Callable[[str], None]
) -> tuple[ExperimentConfig, NewsClassifier]:
    """Fit every grid candidate on train, score it on validation in a nested run; return the best and its model.

    Candidates are fitted through joblib: one after another here, or all at once on the Dask cluster that
    ``newsclf train --cluster`` opens (newsclf.train.cluster). Either way each nested run is logged from this process.
    """
    import joblib
    import mlflow

    from newsclf.train.cluster import candidate_backend

    candidates = search_candidates(config)
    if config.search.origins:
        return _rolling_search(config, candidates, splits, step)
    best_score, best, best_model = -1.0, candidates[0], None
    with candidate_backend():
        fitted = joblib.Parallel(return_as="generator")(
            joblib.delayed(_fit_candidate)(candidate, splits.train, splits.validation, splits.has_tone)
            for _, candidate in candidates
        )
        for number, (overrides, candidate) in enumerate(candidates, start=1):
            step(f"search candidate {number}/{len(candidates)}: {overrides}")
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
    step(f"best candidate: {best[0]} (validation score {best_score:.4f})")
    return best[1], best_model


def _rolling_search(
    config: ExperimentConfig, candidates: list, splits: Splits, step: Callable[[str], None]
) -> tuple[ExperimentConfig, NewsClassifier]:
    """``_search`` with rolling-origin folds (newsclf.train.fit.rolling): each candidate fitted and scored once per
    fold, ranked by its mean score, the narrowest within the best one's spread kept and fitted on train."""
    import joblib
    import mlflow

    from newsclf.train.cluster import candidate_backend
    from newsclf.train.fit.rolling import choose, rolling_folds

    folds = rolling_folds(splits.train.concat(splits.validation), config.search.origins)
    step(
        "rolling-origin folds: "
        + ", ".join(f"<= {fold.origin}: {len(fold.fit)} fit / {len(fold.scored)} scored" for fold in folds)
    )
    ranked = []
    with candidate_backend():
        fitted = joblib.Parallel(return_as="generator")(
            joblib.delayed(_rolling_candidate)(candidate, folds, splits.has_tone) for _, candidate in candidates
        )
        for number, (overrides, _) in enumerate(candidates, start=1):
            step(f"search candidate {number}/{len(candidates)}: {overrides}")
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
    step(
        f"kept candidate {kept + 1}: {overrides} (mean {ranked[kept].mean:.4f} +- {ranked[kept].spread:.4f}, "
        f"{ranked[kept].width} features; top mean {top.mean:.4f} +- {top.spread:.4f}); fitting it on train"
    )
    return best, fit_model(best, splits.train, splits.has_tone, step)


def _rolling_candidate(candidate: ExperimentConfig, folds: list, has_tone: bool):
    """One candidate's selection score on each rolling-origin fold, and its width on the last (largest) fold."""
    from newsclf.train.fit.rolling import Ranked

    scores = []
    for fold in folds:
        model = fit_model(candidate, fold.fit, has_tone and any(tone is not None for tone in fold.fit.tones))
        scores.append(selection_score(macro_f1_scores(model, fold.scored)))
    width = sum(classifier_of(pipeline).n_features_in_ for pipeline in model.pipelines.values())
    return Ranked(tuple(scores), width)


def _fit_candidate(
    candidate: ExperimentConfig, train: Articles, validation: Articles, has_tone: bool
) -> tuple[NewsClassifier, dict[str, float]]:
    """One search candidate fitted on ``train`` and its scores on ``validation``: a task of its own, so that
    a cluster can run it (and score it, rather than ship the validation predictions back)."""
    model = fit_model(candidate, train, has_tone)
    return model, macro_f1_scores(model, validation)
