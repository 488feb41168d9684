"""Staged tuning: a coarse-to-fine hyperparameter search on the CEP time split, every candidate an MLflow run.

A plan (TOML) names a base experiment and a list of stages. Each stage varies a few config keys
(dotted, as for ``newsclf train --set``) over a small grid around the best candidate so far and
keeps the winner, so later stages refine what earlier ones found. Candidates are fitted on CEP
2010-2016 and scored on 2017 only: the selection never sees a test set.

This is research, not training's ``[search.grid]``: that one fits every combination of one grid
as full models of one training run, to pick the model it registers; staged tuning explores many
more settings cheaply (cached TF-IDF matrices, only the classifier refitted, no tone-applies
model) to choose the settings an experiment file then fixes. Both score candidates the same
way (:mod:`train.metrics`).
"""

from __future__ import annotations

import dataclasses
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
from train.classifiers import KINDS, build_classifier
from train.config import ConfigError, ExperimentConfig, flatten, load_config
from train.data import Articles
from train.metrics import selection_score

TUNING_EXPERIMENT = "newsclf-tuning"


@dataclass(frozen=True)
class StagedPlan:
    """Where staged tuning starts and the stages it refines in order."""

    base: str
    stages: tuple[tuple[str, dict[str, tuple[Any, ...]]], ...]
    # Seeds each candidate is fitted with, its scores the means: SGD's shuffling alone moves CEP
    # mean macro-F1 by about 0.002 (standard deviation), as much as close candidates differ.
    # Empty: the base's seed.
    seeds: tuple[int, ...] = ()


@dataclass
class Trial:
    """One scored candidate: the overrides that define it on top of the base, and its validation scores."""

    stage: str
    overrides: dict[str, Any]
    config: ExperimentConfig
    scores: dict[str, float]

    @property
    def score(self) -> float:
        """The selection score (:func:`train.metrics.selection_score`): mean macro-F1 of the tasks on 2017."""
        return self.scores["mean_macro_f1"]


@dataclass
class StagedResult:
    """Every trial in the order it ran, and the best one."""

    trials: list[Trial] = field(default_factory=list)

    @property
    def best(self) -> Trial:
        """The highest selection score; the earliest wins a tie (fewer changes from the base)."""
        return max(self.trials, key=lambda trial: trial.score)


def load_plan(path: str | Path) -> StagedPlan:
    """Read a plan file: ``base = "<experiment>"`` and ``[[stage]]`` tables of ``"key" = [values]``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"tuning plan not found: {path}; pass --plan with a TOML file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(raw) - {"base", "seeds", "stage"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; a plan has 'base', 'seeds' and [[stage]] tables")
    seeds = raw.get("seeds", [])
    if not isinstance(seeds, list) or not all(type(seed) is int for seed in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: seeds must be a list of distinct integers, got {seeds!r}")
    stages = []
    for number, stage in enumerate(raw.get("stage", []), start=1):
        name = str(stage.pop("name", f"stage {number}"))
        if not stage or any(not isinstance(values, list) or not values for values in stage.values()):
            raise ConfigError(f"{path}: {name}: every key must map to a non-empty list of values to try")
        stages.append((name, {key: tuple(values) for key, values in stage.items()}))
    if not stages:
        raise ConfigError(f"{path}: no [[stage]] tables; add at least one stage of values to try")
    return StagedPlan(base=str(raw.get("base", "default")), stages=tuple(stages), seeds=tuple(seeds))


def staged_tuning(
    plan: StagedPlan,
    train: Articles,
    validation: Articles,
    tracking_uri: str,
    progress: Callable[[str], None] = lambda message: None,
) -> StagedResult:
    """Run the plan's stages in order; log each new candidate as a nested run of one parent run."""
    import mlflow

    candidates = _CachedFeatureScorer(train, validation)
    result = StagedResult()
    current: dict[str, Any] = {}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(TUNING_EXPERIMENT)
    with mlflow.start_run(run_name=f"tune {Path(plan.base).stem}") as parent:
        mlflow.log_params(
            {
                "base": plan.base,
                "seeds": str(list(plan.seeds)) if plan.seeds else "base",
                "train_items": len(train),
                "validation_items": len(validation),
            }
        )
        for stage, grid in plan.stages:
            for values in itertools.product(*grid.values()):
                overrides = current | dict(zip(grid, values))
                config = load_config(plan.base, overrides)
                if any(_same_model(config, trial.config) for trial in result.trials):
                    continue
                scores = candidates.score(config, plan.seeds or (config.seed,))
                trial = Trial(stage, overrides, config, scores)
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
                    f"fit {scores['fit_seconds']:5.1f}s  {_describe(overrides) or 'base'}"
                )
            current = dict(result.best.overrides)
        best = result.best
        mlflow.log_metrics({f"best_{name}": value for name, value in best.scores.items()})
        mlflow.set_tag("best_overrides", _describe(best.overrides))
        mlflow.log_text(recommended_toml(best.config), "recommended.toml")
    progress(f"best of {len(result.trials)} candidates (parent run {parent.info.run_id}): {_describe(best.overrides)}")
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
    """bench/tuning.md: what was searched, every trial, and the winner as TOML."""
    return (
        "# Staged tuning on the CEP time split: train 2010-2016, validate 2017\n\n"
        f"Written by `{command}`; every row is a nested MLflow run in the `{TUNING_EXPERIMENT}` experiment. "
        f"Base: `{plan.base}`. Each stage starts from the best row so far. Fit seconds: both tasks on the "
        "2010-2016 items, one core, on a machine shared with other work."
        + (
            f" Every score is the mean over the SGD seeds {list(plan.seeds)}; ± is the standard deviation of the "
            "mean macro-F1 over those seeds."
            if len(plan.seeds) > 1
            else ""
        )
        + "\n\n"
        + tuning_table(result)
        + "\n## Best\n\n```toml\n"
        + recommended_toml(result.best.config)
        + "```\n"
    )


def tuning_table(result: StagedResult) -> str:
    """A Markdown table of every trial, best marked."""
    best = result.best
    lines = [
        "| # | stage | change from the base | topic macro-F1 | tone macro-F1 | mean | fit s (both tasks) |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, trial in enumerate(result.trials, start=1):
        mark = " **best**" if trial is best else ""
        s = trial.scores
        lines.append(
            f"| {number} | {trial.stage} | {_describe(trial.overrides) or 'base'}{mark} | {s['topic_macro_f1']:.4f} | "
            f"{s['tone_macro_f1']:.4f} | {s['mean_macro_f1']:.4f}{_spread(s)} | {s['fit_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


class _CachedFeatureScorer:
    """Fits and scores candidates, reusing the TF-IDF matrices while only the classifier changes."""

    def __init__(self, train: Articles, validation: Articles):
        self._data = {}
        for task in TASKS:
            (fit_on, y_fit), (scored, y_scored) = train.for_task(task), validation.for_task(task)
            self._data[task] = (fit_on.texts, y_fit, scored.texts, y_scored)
        self._features: dict[tuple[str, Any], tuple[Any, Any, float]] = {}
        self._tasks: dict[tuple[str, Any, Any, int], dict[str, float]] = {}

    def score(self, config: ExperimentConfig, seeds: tuple[int, ...]) -> dict[str, float]:
        """Validation scores of ``config``, each the mean over ``seeds``; ``mean_macro_f1_sd`` is its spread."""
        per_seed = [self._score_seed(dataclasses.replace(config, seed=seed)) for seed in seeds]
        scores = {name: statistics.fmean(run[name] for run in per_seed) for name in per_seed[0]}
        scores["mean_macro_f1_sd"] = (
            statistics.stdev(run["mean_macro_f1"] for run in per_seed) if len(seeds) > 1 else 0.0
        )
        return scores

    def _score_seed(self, config: ExperimentConfig) -> dict[str, float]:
        scores: dict[str, float] = {}
        for task in TASKS:
            key = (task, config.features, getattr(config, task), config.seed)
            if key not in self._tasks:  # a stage that varies one task's classifier leaves the other's score as it was
                self._tasks[key] = self._score_task(task, config)
            scores.update(self._tasks[key])
        scores["mean_macro_f1"] = selection_score({task: scores[f"{task}_macro_f1"] for task in TASKS})
        scores["fit_seconds"] = scores["topic_fit_seconds"] + scores["tone_fit_seconds"]
        return scores

    def _score_task(self, task: str, config: ExperimentConfig) -> dict[str, float]:
        x_train, x_valid, feature_seconds = self._matrices(task, config)
        _, y_train, _, y_valid = self._data[task]
        started = time.perf_counter()
        classifier = build_classifier(getattr(config, task), config.seed).fit(x_train, y_train)
        fit_seconds = feature_seconds + time.perf_counter() - started
        scores = label_scores(y_valid, classifier.predict(x_valid), classifier.classes_)
        return {f"{task}_{name}": value for name, value in scores.items()} | {f"{task}_fit_seconds": fit_seconds}

    def _matrices(self, task: str, config: ExperimentConfig):
        from features.tfidf import build_features

        key = (task, config.features)
        if key not in self._features:
            if len(self._features) >= 4:  # a stage varies features or classifiers, rarely both
                self._features.pop(next(iter(self._features)))
            texts, _, valid_texts, _ = self._data[task]
            started = time.perf_counter()
            features = build_features(config.features)
            x_train = features.fit_transform(texts)
            self._features[key] = (x_train, features.transform(valid_texts), time.perf_counter() - started)
        return self._features[key]


def _same_model(a: ExperimentConfig, b: ExperimentConfig) -> bool:
    return (a.features, a.topic, a.tone, a.seed) == (b.features, b.topic, b.tone, b.seed)


def _spread(scores: dict[str, float]) -> str:
    return f" ± {scores['mean_macro_f1_sd']:.4f}" if scores.get("mean_macro_f1_sd") else ""


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
