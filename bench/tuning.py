"""Staged tuning: a coarse-to-fine hyperparameter search on CEP, every candidate an MLflow run.

A plan (TOML) names a base experiment, rolling-origin folds and a list of stages. Each stage varies
a few config keys (dotted, as for ``newsclf train --set``) over a small grid around the kept
candidate so far, so later stages refine what earlier ones found. Every candidate is fitted and
scored on each rolling-origin fold (train.rolling: by default fit <= 2014 -> score 2015, <= 2015 ->
2016, <= 2016 -> 2017), ranked by its mean score with the fold spread shown, and the candidate kept
is the one :func:`newsclf.train.fit.rolling.choose` keeps: among those level with the best mean within the
spread of their fold-by-fold gaps, the narrowest (fewest features its classifiers read, which
prediction cost and artifact size grow with). The selection never sees a test set.

This is research, not training's ``[search.grid]``: that one fits every combination of one grid
as full models of one training run, to pick the model it registers; staged tuning explores many
more settings cheaply (cached TF-IDF matrices, only the classifier refitted, no tone-applies
model) to choose the settings an experiment file then fixes. Both score candidates the same
way (:mod:`train.metrics`) and over folds defined once (:mod:`train.rolling`).
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import statistics
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import label_scores
from bench.peers import TASKS
from newsclf.train.classifiers import KINDS, build_classifier
from newsclf.train.config import ConfigError, ExperimentConfig, flatten, load_config
from newsclf.train.data.articles import Articles
from newsclf.train.evaluation.metrics import selection_score
from newsclf.train.fit.rolling import Fold, Ranked, choose, rolling_folds

TUNING_EXPERIMENT = "newsclf-tuning"


# The rolling-origin folds of a plan without ``origins``: those of experiments/cep-rolling.toml.
DEFAULT_ORIGINS = ("2014-12-31", "2015-12-31", "2016-12-31")


@dataclass(frozen=True)
class StagedPlan:
    """Where staged tuning starts, the folds it scores on and the stages it refines in order."""

    base: str
    stages: tuple[tuple[str, dict[str, tuple[Any, ...]]], ...]
    # Seeds each candidate is fitted with, its scores the means: SGD's shuffling alone moves CEP
    # mean macro-F1 by about 0.002 (standard deviation), as much as close candidates differ.
    # Empty: the base's seed.
    seeds: tuple[int, ...] = ()
    # Rolling-origin folds (train.rolling.rolling_folds): one fold per origin date.
    origins: tuple[str, ...] = DEFAULT_ORIGINS


@dataclass
class Trial:
    """One scored candidate: the overrides that define it on top of the base, and its scores over the folds."""

    stage: str
    overrides: dict[str, Any]
    config: ExperimentConfig
    scores: dict[str, float]
    ranked: Ranked

    @property
    def score(self) -> float:
        """The selection score (:func:`newsclf.train.evaluation.metrics.selection_score`, mean macro-F1
        of the tasks), averaged over the folds."""
        return self.ranked.mean


@dataclass
class StagedResult:
    """Every trial in the order it ran, the one kept and the one of highest mean."""

    trials: list[Trial] = field(default_factory=list)

    @property
    def best(self) -> Trial:
        """The kept trial (:func:`newsclf.train.fit.rolling.choose`): the narrowest of those level with the
        highest mean within the spread; a tie of width goes to the higher mean, then to the earlier trial."""
        return self.trials[choose([trial.ranked for trial in self.trials])]

    @property
    def top(self) -> Trial:
        """The trial of highest mean score; the earliest wins a tie."""
        return max(self.trials, key=lambda trial: trial.score)


def load_plan(path: str | Path) -> StagedPlan:
    """Read a plan file: ``base = "<experiment>"``, optional ``seeds`` and ``origins``, and ``[[stage]]``
    tables of ``"key" = [values]``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"tuning plan not found: {path}; pass --plan with a TOML file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(raw) - {"base", "seeds", "origins", "stage"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r}; a plan has 'base', 'seeds', 'origins' and [[stage]] tables"
        )
    seeds = raw.get("seeds", [])
    if not isinstance(seeds, list) or not all(type(seed) is int for seed in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: seeds must be a list of distinct integers, got {seeds!r}")
    origins = raw.get("origins", list(DEFAULT_ORIGINS))
    if not _increasing_dates(origins):
        raise ConfigError(
            f'{path}: origins must be a non-empty list of increasing ISO dates such as "2015-12-31", got {origins!r}'
        )
    stages = []
    for number, stage in enumerate(raw.get("stage", []), start=1):
        name = str(stage.pop("name", f"stage {number}"))
        if not stage or any(not isinstance(values, list) or not values for values in stage.values()):
            raise ConfigError(f"{path}: {name}: every key must map to a non-empty list of values to try")
        stages.append((name, {key: tuple(values) for key, values in stage.items()}))
    if not stages:
        raise ConfigError(f"{path}: no [[stage]] tables; add at least one stage of values to try")
    return StagedPlan(
        base=str(raw.get("base", "default")), stages=tuple(stages), seeds=tuple(seeds), origins=tuple(origins)
    )


def _increasing_dates(origins: Any) -> bool:
    if not isinstance(origins, list) or not origins or not all(isinstance(day, str) for day in origins):
        return False
    try:
        days = [datetime.date.fromisoformat(day) for day in origins]
    except ValueError:
        return False
    return all(a < b for a, b in zip(days, days[1:]))


def staged_tuning(
    plan: StagedPlan,
    articles: Articles,
    tracking_uri: str,
    progress: Callable[[str], None] = lambda message: None,
) -> StagedResult:
    """Run the plan's stages in order over the rolling-origin folds of the dated ``articles``; log each new
    candidate as a nested run of one parent run."""
    import mlflow

    folds = rolling_folds(articles, plan.origins)
    candidates = _CachedFeatureScorer(folds)
    result = StagedResult()
    current: dict[str, Any] = {}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(TUNING_EXPERIMENT)
    progress(
        "rolling-origin folds: "
        + ", ".join(f"<= {fold.origin}: {len(fold.fit)} fit / {len(fold.scored)} scored" for fold in folds)
    )
    with mlflow.start_run(run_name=f"tune {Path(plan.base).stem}") as parent:
        mlflow.log_params(
            {
                "base": plan.base,
                "seeds": str(list(plan.seeds)) if plan.seeds else "base",
                "origins": str(list(plan.origins)),
            }
            | {f"fold_{fold.origin}_items": f"{len(fold.fit)} fit / {len(fold.scored)} scored" for fold in folds}
        )
        for stage, grid in plan.stages:
            for values in itertools.product(*grid.values()):
                overrides = current | dict(zip(grid, values))
                config = load_config(plan.base, overrides)
                if any(_same_model(config, trial.config) for trial in result.trials):
                    continue
                scores, ranked = candidates.score(config, plan.seeds or (config.seed,))
                trial = Trial(stage, overrides, config, scores, ranked)
                result.trials.append(trial)
                with mlflow.start_run(run_name=_describe(overrides) or "base", nested=True):
                    mlflow.log_params(
                        {
                            key: str(value)
                            for key, value in flatten(config).items()
                            if key.split(".")[0] in ("features", "topic", "tone")
                        }
                    )
                    mlflow.set_tags({"stage": stage, "overrides": _describe(overrides) or "base"})
                    mlflow.log_metrics(scores)
                progress(
                    f"{stage:>18}  topic {scores['topic_macro_f1']:.4f}  tone {scores['tone_macro_f1']:.4f}  "
                    f"mean {ranked.mean:.4f} +- {ranked.spread:.4f}  {ranked.width:,} features  "
                    f"fit {scores['fit_seconds']:5.1f}s  {_describe(overrides) or 'base'}"
                )
            current = dict(result.best.overrides)
        best = result.best
        mlflow.log_metrics({f"best_{name}": value for name, value in best.scores.items()})
        mlflow.set_tag("best_overrides", _describe(best.overrides))
        mlflow.log_text(recommended_toml(best.config), "recommended.toml")
    progress(f"kept of {len(result.trials)} candidates (parent run {parent.info.run_id}): {_describe(best.overrides)}")
    return result


def recommended_toml(config: ExperimentConfig) -> str:
    """The features, topic and tone sections of a config, as TOML to paste into an experiment file.

    A ``[topic]`` / ``[tone]`` key is written only if it is ``kind`` or a hyperparameter the kind
    reads (:data:`train.classifiers.KINDS`).
    """
    flat = flatten(config)
    sections: dict[str, list[str]] = {}
    for key, value in flat.items():
        section, _, name = key.rpartition(".")
        # TOML has no null: a key left out takes its default (None).
        if section.split(".")[0] not in ("features", "topic", "tone") or value is None:
            continue
        if (
            section in ("topic", "tone")
            and name != "kind"
            and name not in KINDS[flat[f"{section}.kind"]].hyperparameters
        ):
            continue  # a setting this kind does not read
        sections.setdefault(section, []).append(f"{name} = {_toml_value(value)}")
    return "\n".join(f"[{section}]\n" + "\n".join(lines) + "\n" for section, lines in sections.items())


def tuning_page(result: StagedResult, plan: StagedPlan, command: str) -> str:
    """bench/tuning.md: what was searched, every trial, and the kept one as TOML."""
    periods = ", ".join(f"<= {origin}" for origin in plan.origins)
    return (
        "# Staged tuning on CEP over rolling-origin folds\n\n"
        f"Written by `{command}`; every row is a nested MLflow run in the `{TUNING_EXPERIMENT}` experiment. "
        f"Base: `{plan.base}`. Folds (train/fit/rolling.py): fit on the CEP items dated {periods}, each scored on the "
        "items after its origin up to the next one (the last: to the end of 2017). A score is the mean macro-F1 of "
        "topic and tone; rows show its mean over the folds +- the standard deviation over the folds. Each stage "
        "starts from the kept row so far. The kept row is the one `choose` (train/fit/rolling.py) keeps, as "
        "training's `[search] origins` does: among the rows level with the highest mean (their mean gap to it, "
        "paired by fold, no more than the standard deviation of those gaps) the cheapest, where cheaper means "
        "fewer features read by "
        "the classifiers (topic + tone columns on the last fold; prediction time and artifact size grow with it). "
        "Fit seconds: both tasks on the last fold, one core, on a machine shared with other work."
        + (f" Every fold score is the mean over the SGD seeds {list(plan.seeds)}." if len(plan.seeds) > 1 else "")
        + "\n\n"
        + tuning_table(result)
        + "\n## Kept\n\n```toml\n"
        + recommended_toml(result.best.config)
        + "```\n"
    )


def tuning_table(result: StagedResult) -> str:
    """A Markdown table of every trial, the kept one marked **kept** (and the highest mean **top mean** if
    another)."""
    best, top = result.best, result.top
    lines = [
        "| # | stage | change from the base | topic macro-F1 | tone macro-F1 | mean +- fold sd | per fold "
        "| features | fit s (both tasks) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for number, trial in enumerate(result.trials, start=1):
        mark = " **kept**" if trial is best else ""
        mark += " **top mean**" if trial is top and top is not best else ""
        s = trial.scores
        per_fold = ", ".join(f"{score:.4f}" for score in trial.ranked.scores)
        lines.append(
            f"| {number} | {trial.stage} | {_describe(trial.overrides) or 'base'}{mark} | {s['topic_macro_f1']:.4f} | "
            f"{s['tone_macro_f1']:.4f} | {trial.ranked.mean:.4f} +- {trial.ranked.spread:.4f} | {per_fold} | "
            f"{trial.ranked.width:,} | {s['fit_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


class _CachedFeatureScorer:
    """Fits and scores candidates on every fold, reusing the TF-IDF matrices while only the classifier changes."""

    def __init__(self, folds: list[Fold]):
        self._origins = [fold.origin for fold in folds]
        self._data = {}
        for number, fold in enumerate(folds):
            for task in TASKS:
                (fit_on, y_fit), (scored, y_scored) = fold.fit.for_task(task), fold.scored.for_task(task)
                self._data[number, task] = (fit_on.texts, y_fit, scored.texts, y_scored)
        self._features: dict[tuple[int, str, Any], tuple[Any, Any, float]] = {}
        self._tasks: dict[tuple[int, str, Any, Any, int], dict[str, float]] = {}

    def score(self, config: ExperimentConfig, seeds: tuple[int, ...]) -> tuple[dict[str, float], Ranked]:
        """The scores of ``config`` (per fold each the mean over ``seeds``) as MLflow metrics, and its
        :class:`newsclf.train.fit.rolling.Ranked`: the fold selection scores and the width on the last fold."""
        per_fold = []
        for number in range(len(self._origins)):
            per_seed = [self._score_seed(number, dataclasses.replace(config, seed=seed)) for seed in seeds]
            fold = {name: statistics.fmean(run[name] for run in per_seed) for name in per_seed[0]}
            fold["seed_sd"] = statistics.stdev(run["mean_macro_f1"] for run in per_seed) if len(seeds) > 1 else 0.0
            per_fold.append(fold)
        last = per_fold[-1]
        ranked = Ranked(tuple(fold["mean_macro_f1"] for fold in per_fold), int(last["width"]))
        scores = {
            name: statistics.fmean(fold[name] for fold in per_fold)
            for name in ("topic_macro_f1", "tone_macro_f1", "topic_accuracy", "tone_accuracy")
        }
        scores |= {
            "mean_macro_f1": ranked.mean,
            "mean_macro_f1_spread": ranked.spread,
            "mean_macro_f1_seed_sd": statistics.fmean(fold["seed_sd"] for fold in per_fold),
            "width": ranked.width,
            "fit_seconds": last["fit_seconds"],
        }
        scores |= {
            f"fold_{origin}_mean_macro_f1": fold["mean_macro_f1"] for origin, fold in zip(self._origins, per_fold)
        }
        return scores, ranked

    def _score_seed(self, fold: int, config: ExperimentConfig) -> dict[str, float]:
        scores: dict[str, float] = {}
        for task in TASKS:
            key = (fold, task, config.features, getattr(config, task), config.seed)
            if key not in self._tasks:  # a stage that varies one task's classifier leaves the other's score as it was
                self._tasks[key] = self._score_task(fold, task, config)
            scores.update(self._tasks[key])
        scores["mean_macro_f1"] = selection_score({task: scores[f"{task}_macro_f1"] for task in TASKS})
        scores["fit_seconds"] = sum(scores[f"{task}_fit_seconds"] for task in TASKS)
        scores["width"] = sum(scores[f"{task}_width"] for task in TASKS)
        return scores

    def _score_task(self, fold: int, task: str, config: ExperimentConfig) -> dict[str, float]:
        x_train, x_valid, feature_seconds = self._matrices(fold, task, config)
        _, y_train, _, y_valid = self._data[fold, task]
        started = time.perf_counter()
        classifier = build_classifier(getattr(config, task), config.seed).fit(x_train, y_train)
        fit_seconds = feature_seconds + time.perf_counter() - started
        scores = label_scores(y_valid, classifier.predict(x_valid), classifier.classes_)
        return {f"{task}_{name}": value for name, value in scores.items()} | {
            f"{task}_fit_seconds": fit_seconds,
            f"{task}_width": classifier.n_features_in_,
        }

    def _matrices(self, fold: int, task: str, config: ExperimentConfig):
        from newsclf.features.tfidf import build_features

        key = (fold, task, config.features)
        if key not in self._features:
            # Two feature settings per fold and task: a stage varies features or classifiers, rarely both.
            if len(self._features) >= 2 * len(TASKS) * len(self._origins):
                self._features.pop(next(iter(self._features)))
            texts, _, valid_texts, _ = self._data[fold, task]
            started = time.perf_counter()
            features = build_features(config.features)
            x_train = features.fit_transform(texts)
            self._features[key] = (x_train, features.transform(valid_texts), time.perf_counter() - started)
        return self._features[key]


def _same_model(a: ExperimentConfig, b: ExperimentConfig) -> bool:
    return (a.features, a.topic, a.tone, a.seed) == (b.features, b.topic, b.tone, b.seed)


def _describe(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{key}={_toml_value(value)}" for key, value in overrides.items())


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return repr(value)
