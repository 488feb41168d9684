"""Train both tasks, track the run in MLflow, register the model and promote it when it wins."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.metrics import f1_score

from train.config import DataConfig, ExperimentConfig, flatten, search_candidates
from train.data import Articles, DataError, Splits, load_splits
from train.errors import NewsclfError
from train.evaluate import confusion_figure, report_text, task_metrics, top_terms
from train.model import APPLIES, NOT_APPLICABLE, NewsClassifier
from train.paths import PACKAGE_DIR
from train.pipeline import build_pipeline, fit_pipeline, fit_tone_applies
from train.sources import describe, detect_format, parse_hub

MODEL_ARTIFACT = "model"
# What a logged model needs at load time; nothing else of this project is bundled.
_BUNDLED_MODULES = {
    "train": ("_files.py", "errors.py", "evaluate.py", "explain.py", "model.py", "pyfunc.py"),
    "features": ("__init__.py", "cleaning.py", "counting.py", "shared_tfidf.py", "tfidf.py"),
}


@dataclass(frozen=True)
class TrainResult:
    """What one successful training produced."""

    run_id: str
    model_name: str
    version: str
    promoted: bool
    metrics: dict[str, float]

    @property
    def model_uri(self) -> str:
        """Registry URI of the registered version."""
        return f"models:/{self.model_name}/{self.version}"


def train(config: ExperimentConfig, tracking_uri: str, progress: Callable[[str], None] = lambda message: None) -> TrainResult:
    """Fit, evaluate, log and register topic and tone models for one experiment.

    Data problems are raised before any run starts. Anything that fails after that marks the
    MLflow run FAILED and registers nothing.
    """
    import mlflow

    refit = config.search.refit
    clock = _Clock(progress)
    clock.step("loading data")
    splits = load_splits(config.data, config.split, config.dedup, config.seed, clock.step)
    tone_train = splits.train.with_tone()
    _require_two_classes("topic", splits.train.topics)
    if splits.has_tone:
        _require_two_classes("tone", tone_train.tones)
    report = splits.report
    clock.step(
        f"{len(splits.train)} train / {len(splits.validation)} validation / {len(splits.test)} test articles "
        f"({len(tone_train)} train articles carry a tone); {report.duplicates_removed} duplicates removed, "
        f"{report.skipped_empty} empty rows skipped, {sum(report.dropped_by_label.values())} dropped by label"
    )

    _connect(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(config.tracking.experiment)
    with mlflow.start_run(run_name=config.name) as run:
        mlflow.log_params(flatten(config))
        mlflow.set_tags({"git_commit": _git_commit(), "data_fingerprint": report.fingerprint, "data_source": report.source})
        _log_data_report(splits, config.data)

        metadata = {"experiment": config.name, "run_id": run.info.run_id}
        if config.search.grid:
            config, model = _search(config, splits, clock)
            model.metadata.update(metadata)
        else:
            model = _fit(config, splits.train, splits.has_tone, clock, metadata)
        clock.step("evaluating on validation and test")
        scored = model  # validation scores and promotion judge the model that never saw validation
        if refit:
            metrics = _evaluate_and_log(model, {"validation": splits.validation})
            clock.step("refitting the best candidate on train + validation")
            model = _fit(config, splits.train.concat(splits.validation), splits.has_tone, clock, metadata | {"refit": True})
            metrics |= _evaluate_and_log(model, {"test": splits.test})
        else:
            metrics = _evaluate_and_log(model, {"validation": splits.validation, "test": splits.test})
        clock.step("logging the model")
        info = _log_model(model, splits.validation.texts[:2])
        clock.step(f"registering {config.tracking.registered_model}")
        version, promoted = _register(info.model_uri, scored, splits.validation, config)
        mlflow.set_tags({"registered_version": version, "promoted": str(promoted).lower()})
    clock.step(f"done: {config.tracking.registered_model} version {version}" + (f" is now @{config.tracking.champion_alias}" if promoted else ""))
    return TrainResult(run.info.run_id, config.tracking.registered_model, version, promoted, metrics)


def _fit(config: ExperimentConfig, articles: Articles, has_tone: bool, clock: "_Clock", metadata: dict) -> NewsClassifier:
    clock.step(f"fitting topic model on {len(articles)} articles")
    topic, topic_features = fit_pipeline(build_pipeline(config.features, config.topic, config.seed), articles.texts, articles.topics, config.n_jobs)
    tone = None
    if has_tone:
        toned = articles.with_tone()
        clock.step(f"fitting tone model on {len(toned)} articles")
        tone, _ = fit_pipeline(build_pipeline(config.features, config.tone, config.seed), toned.texts, toned.tones, config.n_jobs)
        clock.step("fitting the tone-applies model on the topic features")
        applies = fit_tone_applies(topic_features, articles.tones, config.tone, config.seed)
        return NewsClassifier(topic, tone, metadata=metadata, tone_applies=applies)
    return NewsClassifier(topic, None, metadata=metadata)


def _search(config: ExperimentConfig, splits: Splits, clock: "_Clock") -> tuple[ExperimentConfig, NewsClassifier]:
    """Fit every grid candidate on train, score it on validation in a nested run; return the best and its model."""
    import mlflow

    candidates = search_candidates(config)
    best_score, best, best_model = -1.0, candidates[0], None
    for number, (overrides, candidate) in enumerate(candidates, start=1):
        clock.step(f"search candidate {number}/{len(candidates)}: {overrides}")
        with mlflow.start_run(run_name=f"candidate-{number}", nested=True):
            mlflow.log_params(overrides)
            model = _fit(candidate, splits.train, splits.has_tone, _Clock(lambda message: None), {})
            scores = validation_scores(model, splits.validation)
            score = float(np.mean(list(scores.values())))
            mlflow.log_metrics({f"validation_{task}_macro_f1": value for task, value in scores.items()} | {"validation_score": score})
        if score > best_score:
            best_score, best, best_model = score, (overrides, candidate), model
    mlflow.log_params({f"search.best.{key}": value for key, value in best[0].items()})
    mlflow.log_metric("search_best_validation_score", best_score)
    clock.step(f"best candidate: {best[0]} (validation score {best_score:.4f})")
    return best[1], best_model


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


def _connect(tracking_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri).search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises many types for an unusable store
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise NewsclfError(f"tracking store {tracking_uri} is unreachable ({reason}); start it or pass --tracking-uri") from None


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(["git", "-C", str(PACKAGE_DIR), "status", "--porcelain"], capture_output=True, text=True, timeout=5)
        return result.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _dataset_source(data: DataConfig):
    """Where the data came from, as the Hugging Face load call that read it."""
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

    fmt = detect_format(data.source, data.format)
    if fmt == "hub":
        name, revision = parse_hub(data.source)
        return HuggingFaceDatasetSource(path=name, revision=revision, split=data.split_name)
    if fmt == "disk":
        return HuggingFaceDatasetSource(path=describe(data.source), split=data.split_name)
    return HuggingFaceDatasetSource(path=fmt, data_files=describe(data.source), split="train")


def _log_data_report(splits: Splits, data: DataConfig) -> None:
    """Dataset inputs per split, the data summary, and what de-duplication removed."""
    import mlflow
    import pandas as pd

    report = splits.report
    source = _dataset_source(data)
    stem = Path(report.source).stem
    for context, articles in (("training", splits.train), ("validation", splits.validation), ("test", splits.test)):
        if not len(articles):
            continue
        frame = pd.DataFrame({"id": articles.ids, "text": articles.texts, "topic": articles.topics, "tone": articles.tones, "date": articles.dates})
        dataset = mlflow.data.from_pandas(frame, source=source, name=f"{stem}-{context}", targets="topic")
        mlflow.log_input(dataset, context=context)
    mlflow.log_dict(splits.summary(), "data/summary.json")
    mlflow.log_dict(
        {
            "removed": report.duplicates_removed,
            "groups": len(report.duplicate_groups),
            "groups_with_conflicting_labels": report.conflicting_groups,
            "sample_groups": report.duplicate_groups[:50],
        },
        "data/duplicates.json",
    )
    mlflow.log_metrics(
        {
            "data_rows_read": report.rows,
            "data_skipped_empty_rows": report.skipped_empty,
            "data_dropped_by_label": sum(report.dropped_by_label.values()),
            "data_duplicates_removed": report.duplicates_removed,
        }
    )


def _evaluate_and_log(model: NewsClassifier, parts: dict[str, Articles]) -> dict[str, float]:
    """Metrics and report artifacts of ``model`` on each named split; top terms of the model."""
    import matplotlib.pyplot as plt
    import mlflow

    metrics: dict[str, float] = {}
    topic_features: dict[str, Any] = {}  # per split, for the tone-applies model, which reads them too
    for task in model.tasks:
        labels = model.labels(task)
        pipeline = model.pipelines[task]
        mlflow.log_dict({label: terms for label, terms in top_terms(pipeline).items()}, f"{task}/top_terms.json")
        for split_name, articles in parts.items():
            scored, y_true = articles.for_task(task)
            if not len(scored):
                continue
            features = pipeline[:-1].transform(scored.texts)
            if task == "topic":
                topic_features[split_name] = features
            proba = pipeline[-1].predict_proba(features)
            for name, value in task_metrics(y_true, proba, labels).items():
                metrics[f"{split_name}_{task}_{name}"] = value
            mlflow.log_text(report_text(y_true, proba, labels), f"{task}/classification_report_{split_name}.txt")
            figure = confusion_figure(y_true, proba, labels, f"{task}: {split_name} ({len(scored)} articles)")
            mlflow.log_figure(figure, f"{task}/confusion_matrix_{split_name}.png")
            plt.close(figure)
    metrics |= _tone_applies_metrics(model, parts, topic_features)
    mlflow.log_metrics(metrics)
    return metrics


def _tone_applies_metrics(model: NewsClassifier, parts: dict[str, Articles], topic_features: dict[str, Any]) -> dict[str, float]:
    """How well the tone-applies model tells articles that carry a tone from the rest, per split."""
    if model.tone_applies is None:
        return {}
    labels = [str(label) for label in model.tone_applies.classes_]
    metrics = {}
    for split_name, features in topic_features.items():
        y_true = [NOT_APPLICABLE if tone is None else APPLIES for tone in parts[split_name].tones]
        proba = model.tone_applies.predict_proba(features)
        metrics |= {f"{split_name}_tone_applies_{name}": value for name, value in task_metrics(y_true, proba, labels).items()}
    return metrics


def _log_model(model: NewsClassifier, example_texts: list[str]):
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from train.model import ARTIFACT_KEY
    from train.pyfunc import PARAMS

    example = pd.DataFrame({"text": example_texts})
    signature = infer_signature(example, model.predict_frame(example_texts), params=PARAMS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(Path(tmp) / ARTIFACT_KEY)
        code = _bundle_code(Path(tmp) / "code")
        return mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(PACKAGE_DIR / "pyfunc_model.py"),
            artifacts={ARTIFACT_KEY: str(folder)},
            code_paths=[str(path) for path in code],
            signature=signature,
            input_example=example,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"joblib=={joblib.__version__}", "pandas"],
        )


def _bundle_code(target: Path) -> list[Path]:
    packages = []
    for package, modules in _BUNDLED_MODULES.items():
        source, destination = PACKAGE_DIR.parent / package, target / package
        destination.mkdir(parents=True)
        for module in modules:
            shutil.copy2(source / module, destination / module)
        if not (destination / "__init__.py").exists():
            (destination / "__init__.py").write_text('"""The part of newsclf a logged model needs."""\n')
        packages.append(destination)
    return packages


def _register(model_uri: str, model: NewsClassifier, validation: Articles, config: ExperimentConfig) -> tuple[str, bool]:
    """Register a new version; move the champion alias to it only if it is significantly better
    on the validation articles (train.comparison; the first version always becomes champion)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from train.comparison import BETTER, compare_models
    from train.loading import load_model

    name, alias = config.tracking.registered_model, config.tracking.champion_alias
    client = MlflowClient()
    score = selection_score(model, validation)
    promoted = True
    champion = _current_champion(client, name, alias)
    if champion is not None:
        comparison = compare_models(load_model(f"models:/{name}/{champion.version}"), model, validation, seed=config.seed)
        mlflow.log_metrics(comparison.flat_metrics("promotion"))
        mlflow.set_tag("promotion_verdict", comparison.verdict)
        promoted = comparison.verdict == BETTER
    mlflow.log_metric("validation_score", score)
    version = mlflow.register_model(model_uri, name).version
    try:
        client.set_model_version_tag(name, version, "validation_score", f"{score:.6f}")
        if promoted:
            client.set_registered_model_alias(name, alias, version)
    except Exception:
        client.delete_model_version(name, version)
        raise
    return str(version), promoted


def _current_champion(client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def validation_scores(model: NewsClassifier, validation: Articles) -> dict[str, float]:
    """Macro-F1 per task on validation articles (tone on those that carry one)."""
    scores = {}
    for task in model.tasks:
        scored, y_true = validation.for_task(task)
        if not len(scored):
            continue
        predicted = model.pipelines[task].predict(scored.texts)
        scores[task] = float(f1_score(y_true, predicted, labels=sorted(set(y_true)), average="macro", zero_division=0))
    return scores


def selection_score(model: NewsClassifier, validation: Articles) -> float:
    """Mean macro-F1 over the tasks, on validation articles: the number promotion compares."""
    return float(np.mean(list(validation_scores(model, validation).values())))
