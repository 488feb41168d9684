"""Offline evaluation: find the model and its data, write the report, log it as an MLflow run.

Everything a user can get wrong (model not found, unreadable data, no labels) fails before any
MLflow run starts. The report is written into a temporary folder next to the output folder and
moved into place only after the MLflow run has logged it, so a failure leaves neither a
half-written report nor a FINISHED run.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsclf.errors import NewsclfError
from newsclf.loading import load_model, registered_version
from newsclf.model import NewsClassifier
from train.config import ConfigError, ExperimentConfig, config_from_dict, load_config, parse_override
from train.data import Articles, DataError, load_articles, load_splits
from train.paths import EVALUATION_REPORTS_DIR
from train.report import METRICS, Evaluation, ReportSettings, evaluate_articles, write_report

_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/")
_RUN_PARAM_SECTIONS = ("seed", "data.", "split.", "dedup.")


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate on what; library code takes this, never CLI arguments.

    ``data`` None means the model's own test split, rebuilt from its training run's parameters
    (the default experiment's when the run is unknown). ``output`` None means
    ``reports/evaluation/<model>``. ``compare`` names a reference model to judge ``model`` against.
    """

    model: str
    data: str | None = None
    output: Path | None = None
    compare: str | None = None
    settings: ReportSettings = field(default_factory=ReportSettings)


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
    candidate = _resolve(request.model, client, tracking_uri)
    reference = _resolve(request.compare, client, tracking_uri) if request.compare else None
    training = _training_config(client, candidate.run_id)
    articles, data_context, training_labels = _articles(request.data, training, client, candidate.run_id)
    output = request.output or EVALUATION_REPORTS_DIR / candidate.slug
    _check_output(output)

    progress(f"evaluating on {len(articles)} articles ({request.settings.resamples} bootstrap resamples)")
    evaluation = evaluate_articles(
        candidate.model, articles, request.settings, training_labels, reference.model if reference else None
    )
    evaluation.context = _context(candidate, reference, data_context)

    progress("writing the report and logging the MLflow run")
    experiment_id = _experiment_id(client, candidate.run_id)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=_parent(output)))
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluate {candidate.slug}") as run:
            evaluation.context["header"]["MLflow run"] = f"{run.info.run_id} (experiment {experiment_id})"
            write_report(evaluation, staging)
            _log_run(evaluation, candidate, reference, articles, data_context, staging)
            mlflow.log_metric("evaluation_seconds", time.perf_counter() - started)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    verdict = evaluation.comparison.verdict if evaluation.comparison else None
    return EvaluationResult(output, run.info.run_id, evaluation.summary_metrics(), verdict)


def _resolve(uri: str, client, tracking_uri: str) -> _ModelRef:
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


def _training_config(client, run_id: str | None) -> ExperimentConfig | None:
    """The data, split and seed of the run that trained the model, from its logged params."""
    if not run_id:
        return None
    params = client.get_run(run_id).data.params
    raw: dict[str, Any] = {"name": params.get("name", "training-run")}
    for key, value in params.items():
        if key.startswith(_RUN_PARAM_SECTIONS):
            *sections, leaf = key.split(".")
            node = raw
            for section in sections:
                node = node.setdefault(section, {})
            node[leaf] = parse_override(f"{key}={value}")[1]
    try:
        return config_from_dict(raw, source=f"run {run_id}")
    except ConfigError:  # a run logged by another newsclf version: fall back to the defaults
        return None


def _articles(data: str | None, training: ExperimentConfig | None, client, run_id: str | None):
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
        _require_readable(Path(data))
        # The training run's column and label mapping applies to new data of the same shape.
        articles, report, _ = load_articles(replace(config.data, source=data), tone_optional=True)
        path, fingerprint, description = report.source, report.fingerprint, report.source
    context = {"data": str(path), "data_description": description, "data_fingerprint": fingerprint}
    training_labels = None
    if trained_on is not None:
        train = trained_on.train
        training_labels = {"topic": train.topics, "tone": [tone for tone in train.tones if tone is not None]}
        seen = set(train.texts)
        context["overlap_with_training"] = sum(text in seen for text in articles.texts)
    return articles, context, training_labels


def _require_readable(path: Path) -> None:
    """Say what is wrong with a data file before the JSON reader gives a vaguer reason."""
    if not path.is_file():
        return  # load_articles names the missing file
    try:
        with open(path, "rb") as handle:
            empty = not handle.read(1)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror}); check its permissions") from None
    if empty:
        raise DataError(f"{path}: the file is empty; pass a JSON Lines file with one labelled article per line")


def _check_output(output: Path) -> None:
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / METRICS).is_file())):
        raise NewsclfError(
            f"output {output} exists and is not an evaluation report; pass --output with a new or report folder"
        )


def _parent(output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    return output.parent


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


def _experiment_id(client, run_id: str | None) -> str:
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
        dataset = _mlflow_evaluate(task, result, data, candidate)
        mlflow.log_metrics(result.flat_metrics(), model_id=candidate.logged_model_id, dataset=dataset)
    if evaluation.comparison is not None:
        mlflow.log_metrics(evaluation.comparison.flat_metrics("compare"))
    mlflow.log_artifacts(str(folder))


def _mlflow_evaluate(task: str, result, data: dict[str, Any], candidate: _ModelRef):
    """MLflow's classifier evaluator on the predictions already made: its standard metrics and
    per-class table, and the dataset and metrics linked to the judged model's LoggedModel."""
    import mlflow
    import pandas as pd
    from sklearn.exceptions import UndefinedMetricWarning

    frame = pd.DataFrame(
        {"id": result.ids, "text": result.texts, "target": result.y_true, "prediction": result.y_pred}
    )
    dataset = mlflow.data.from_pandas(
        frame,
        source=_dataset_source(data["data"]),
        name=f"{Path(data['data']).stem}-{task}",
        targets="target",
        predictions="prediction",
    )
    config = {"log_model_explainability": False, "metric_prefix": f"mlflow_{task}_", "label_list": result.labels}
    if len(result.labels) == 2:
        config["pos_label"] = result.labels[-1]
    # Their INFO lines ("Testing metrics on first row...", "Active model is set...") are noise next to our progress.
    loggers = [logging.getLogger(name) for name in ("mlflow.models.evaluation", "mlflow.tracking.fluent")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Its per-class table scores every label, also those absent from these articles; our own
            # tables set zero_division explicitly, so scikit-learn's warning about them is noise here.
            warnings.filterwarnings("ignore", category=UndefinedMetricWarning)
            mlflow.models.evaluate(
                data=dataset, model_type="classifier", evaluator_config=config, model_id=candidate.logged_model_id
            )
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    return dataset


def _dataset_source(path: str):
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with warnings.catch_warnings():
        # MLflow registers its local-file source class twice and warns that the path is ambiguous.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        return resolve_dataset_source(path)
