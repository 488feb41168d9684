"""Offline evaluation: find the model and its data, write the report, log it as an MLflow run.

Everything a user can get wrong (model not found, unreadable data, no labels, an output folder it
may not replace) fails before any MLflow run starts. The report is written into a hidden staging
folder next to the output folder and moved into place only after the MLflow run has logged it, so a
failure leaves neither a half-written report nor a FINISHED run.

Evaluation writes only into a new (or empty) folder, or replaces one it can prove it wrote: its
marker file ``.newsclf-evaluation`` lists the files it wrote, and nothing else is inside. It deletes
nothing but those files, and refuses the working folder, its parents and the tracking store.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsclf._files import remove_temporary
from newsclf.loading import load_model, registered_version
from newsclf.model import NewsClassifier
from newsclf.train.config import ConfigError, ExperimentConfig, load_config, with_overrides
from newsclf.train.data.articles import Articles, DataError
from newsclf.train.data.loading import load_articles, load_splits
from newsclf.train.evaluation.evaluate import Evaluation, ReportSettings
from newsclf.train.evaluation.evaluate import evaluate as evaluate_model
from newsclf.train.evaluation.report import write_report
from newsclf.train.paths import EVALUATION_REPORTS_DIR
from newsclf.train.tracking.outputs import OutputFolder
from newsclf.train.tracking.runs import liveness, local_dataset_source, run_config

_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/")
_REPORT = OutputFolder("evaluation", "an evaluation report", "newsclf evaluate", EVALUATION_REPORTS_DIR / "mine")
# In a report folder: the files the evaluation that wrote it wrote, as JSON; the proof that it may be replaced.


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate on what; library code takes this, never CLI arguments.

    ``data`` None means the model's own test split, rebuilt from its training run's parameters
    (the default experiment's when the run is unknown). ``output`` None means
    ``reports/evaluation/<model>``. ``compare`` names a reference model to judge ``model`` against.
    ``data_overrides`` (``data.*`` keys, as ``newsclf evaluate --set``) map the columns and labels of
    ``data`` when they differ from what the model trained on.
    """

    model: str
    data: str | None = None
    output: Path | None = None
    compare: str | None = None
    settings: ReportSettings = field(default_factory=ReportSettings)
    data_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        wrong = sorted(key for key in self.data_overrides if not key.startswith("data."))
        if wrong:
            raise ConfigError(f"--set {wrong[0]}: evaluate takes data.* settings only (columns, labels, maps)")
        if self.data_overrides and self.data is None:
            raise ConfigError("--set maps the columns of --data; pass --data with the articles to evaluate")


@dataclass(frozen=True)
class EvaluationResult:
    """Where the report went and the headline numbers."""

    report_dir: Path
    run_id: str
    metrics: dict[str, float]
    verdict: str | None


@dataclass(frozen=True)
class _ModelRef:
    uri: str
    model: NewsClassifier
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    logged_model_id: str | None = None

    @property
    def slug(self) -> str:
        if self.name and self.version:
            return f"{self.name}-v{self.version}"
        return f"run-{self.run_id[:8]}" if self.run_id else Path(self.uri).name or "model"


def evaluate(
    request: EvaluationRequest, tracking_uri: str, progress: Callable[[str], None] = lambda message: None
) -> EvaluationResult:
    """Evaluate a model, write the report folder and log the same content as an MLflow run."""
    import mlflow
    from mlflow.tracking import MlflowClient

    started = time.perf_counter()
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    progress(f"loading {request.model}")
    candidate = resolve_model(request.model, client, tracking_uri)
    output = request.output or EVALUATION_REPORTS_DIR / candidate.slug
    _REPORT.check(output, tracking_uri, client)
    reference = resolve_model(request.compare, client, tracking_uri) if request.compare else None
    training = run_config(client, candidate.run_id)
    articles, data_context, training_labels = _articles(
        request.data, training, client, candidate.run_id, request.data_overrides
    )

    progress(f"evaluating on {len(articles)} articles ({request.settings.resamples} bootstrap resamples)")
    evaluation = evaluate_model(
        candidate.model, articles, request.settings, training_labels, reference.model if reference else None
    )
    evaluation.context = _context(candidate, reference, data_context)

    progress("writing the report and logging the MLflow run")
    experiment_id = experiment_of(client, candidate.run_id)
    staging = _REPORT.new_staging(output)
    try:
        with (
            mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluate {candidate.slug}") as run,
            liveness(tracking_uri, run.info.run_id),
        ):
            evaluation.context["header"]["MLflow run"] = f"{run.info.run_id} (experiment {experiment_id})"
            written = write_report(evaluation, staging)
            _log_run(evaluation, candidate, reference, articles, data_context, staging)
            mlflow.log_metric("evaluation_seconds", time.perf_counter() - started)
            # Inside the run, so a report that cannot be put in place leaves the run FAILED.
            _REPORT.put_in_place(staging, [path.name for path in written], output)
    finally:
        remove_temporary(staging)  # gone already once in place
    verdict = evaluation.comparison.verdict if evaluation.comparison else None
    return EvaluationResult(output, run.info.run_id, evaluation.summary_metrics(), verdict)


def resolve_model(uri: str, client, tracking_uri: str) -> _ModelRef:
    """Load a model and find what the tracking store knows about it (version, run, logged model)."""
    from mlflow.exceptions import MlflowException

    model = load_model(uri, tracking_uri)
    text = str(uri)
    name = version = run_id = None
    try:
        if (entry := registered_version(client, text)) is not None:
            name, version, run_id = entry.name, str(entry.version), entry.run_id
        elif match := _RUN_URI.match(text):
            run_id = match["run_id"]
        if run_id is None and model.metadata.get("run_id"):
            # A folder (or another URI): trust the run it records only if this store has it.
            run_id = client.get_run(model.metadata["run_id"]).info.run_id
        if run_id and not version:
            versions = client.search_model_versions(f"run_id='{run_id}'")
            if len(versions) == 1:
                name, version = versions[0].name, str(versions[0].version)
        logged_model_id = _logged_model_id(client, run_id) if run_id else None
    except MlflowException:
        return _ModelRef(text, model)
    return _ModelRef(text, model, name, version, run_id, logged_model_id)


def _logged_model_id(client, run_id: str) -> str | None:
    outputs = client.get_run(run_id).outputs
    models = outputs.model_outputs if outputs else []
    return models[0].model_id if len(models) == 1 else None


def _articles(
    data: str | None, training: ExperimentConfig | None, client, run_id: str | None, overrides: dict[str, Any]
):
    """The articles to evaluate on, a description of them, and the training labels per task if known."""
    config = training or load_config("default")
    trained_on = None
    if training is not None:
        fingerprint = client.get_run(run_id).data.tags.get("data_fingerprint")
        try:
            splits = load_splits(training.data, training.split, training.dedup, training.seed)
            if fingerprint is None or splits.report.fingerprint == fingerprint:
                trained_on = splits
        except DataError:
            pass  # the training data moved: evaluation still works, baselines learn from the evaluated data
    if data is None:
        if run_id and training is None:
            raise DataError(
                f"the settings of run {run_id}, which trained this model, cannot be read back, so its test "
                "split cannot be rebuilt; pass --data with labelled articles the model has not seen"
            )
        if training is not None and trained_on is None:
            raise DataError(
                f"the data run {run_id} trained on ({training.data.source}) is missing or changed since, so its test "
                "split cannot be rebuilt; pass --data with labelled articles the model has not seen"
            )
        splits = trained_on or load_splits(config.data, config.split, config.dedup, config.seed)
        articles, path, fingerprint = splits.test, splits.report.source, splits.report.fingerprint
        description = (
            f"test split of {path} (seed {config.seed}, {config.split.test:.0%}"
            f"{'' if training else ', default experiment: the model training run is unknown'})"
        )
    else:
        # The training run's column and label mapping applies to new data of the same shape, unless --set maps it.
        mapped = with_overrides(config, overrides).data if overrides else config.data
        articles, report, _ = load_articles(replace(mapped, source=data), tone_optional=True)
        path, fingerprint, description = report.source, report.fingerprint, report.source
    context = {"data": str(path), "data_description": description, "data_fingerprint": fingerprint}
    training_labels = None
    if trained_on is not None:
        train = trained_on.train
        training_labels = {"topic": train.topics, "tone": [tone for tone in train.tones if tone is not None]}
        seen = set(train.texts)
        context["overlap_with_training"] = sum(text in seen for text in articles.texts)
    return articles, context, training_labels


def _context(candidate: _ModelRef, reference: _ModelRef | None, data: dict[str, Any]) -> dict[str, Any]:
    header = {"Model": candidate.uri}
    if candidate.version:
        header["Registered version"] = f"{candidate.name} version {candidate.version}"
    header["Training run"] = candidate.run_id or "unknown (a model folder not tracked in this store)"
    header["Data"] = data["data_description"] + f", SHA-256 {data['data_fingerprint'][:12]}"
    if "overlap_with_training" in data:
        header["Overlap with training"] = (
            f"{data['overlap_with_training']} evaluated articles appear verbatim in the model's training split"
        )
    if reference:
        header["Compared with"] = reference.uri
    header["Evaluated"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    context = {
        "model_uri": candidate.uri,
        "model_name": candidate.name,
        "model_version": candidate.version,
        "model_run_id": candidate.run_id,
        "logged_model_id": candidate.logged_model_id,
        "header": header,
    } | data
    if reference:
        context |= {"reference_uri": reference.uri, "reference_version": reference.version}
    return context


def experiment_of(client, run_id: str | None) -> str:
    """Evaluations sit in the experiment of the run that trained the model (the default one otherwise)."""
    if run_id:
        return client.get_run(run_id).info.experiment_id
    name = load_config("default").tracking.experiment
    existing = client.get_experiment_by_name(name)
    return existing.experiment_id if existing else client.create_experiment(name)


def _log_run(
    evaluation: Evaluation, candidate: _ModelRef, reference: _ModelRef | None, articles: Articles, data, folder: Path
) -> None:
    import mlflow

    tags = {
        "newsclf.kind": "evaluation",
        "model_uri": candidate.uri,
        "data_source": data["data"],
        "data_fingerprint": data["data_fingerprint"],
    }
    optional = {
        "model_name": candidate.name,
        "model_version": candidate.version,
        "model_run_id": candidate.run_id,
        "logged_model_id": candidate.logged_model_id,
    }
    if reference is not None:
        optional |= {"reference_uri": reference.uri, "verdict": evaluation.comparison.verdict}
    mlflow.set_tags(tags | {key: value for key, value in optional.items() if value})
    mlflow.log_params({"articles": len(articles)} | asdict(evaluation.settings))
    for task, result in evaluation.tasks.items():
        # Every number once, ours: MLflow's classifier evaluator would add its own weighted F1 and a
        # second pair of confusion plots beside them.
        dataset = _evaluation_dataset(task, result, data)
        mlflow.log_metrics(result.flat_metrics(), model_id=candidate.logged_model_id, dataset=dataset)
    if evaluation.comparison is not None:
        mlflow.log_metrics(evaluation.comparison.flat_metrics("compare"))
    mlflow.log_artifacts(str(folder))


def _evaluation_dataset(task: str, result, data: dict[str, Any]):
    """The evaluated articles with their labels and this model's predictions, as an MLflow dataset
    input of the run (context ``evaluation``), to link the task's metrics to."""
    import mlflow
    import pandas as pd

    frame = pd.DataFrame(
        {"id": result.ids, "text": result.texts, "target": result.y_true, "prediction": result.y_pred}
    )
    dataset = mlflow.data.from_pandas(
        frame,
        source=local_dataset_source(data["data"]),
        name=f"{Path(data['data']).stem}-{task}",
        targets="target",
        predictions="prediction",
    )
    mlflow.log_input(dataset, context="evaluation")
    return dataset
