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

import json
import logging
import os
import re
import stat
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsclf._files import remove_temporary, temporary_beside
from newsclf.errors import NewsclfError
from newsclf.loading import load_model, registered_version
from newsclf.model import NewsClassifier
from train.config import ExperimentConfig, load_config
from train.data import Articles, DataError, load_articles, load_splits
from train.paths import EVALUATION_REPORTS_DIR
from train.report import Evaluation, ReportSettings, evaluate_articles, write_report
from train.tracking import liveness, run_config

_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/")
# In a report folder: the files the evaluation that wrote it wrote, as JSON; the proof that it may be replaced.
_MARKER = ".newsclf-evaluation"


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
    output = request.output or EVALUATION_REPORTS_DIR / candidate.slug
    _check_output(output, tracking_uri, client)
    reference = _resolve(request.compare, client, tracking_uri) if request.compare else None
    training = run_config(client, candidate.run_id)
    articles, data_context, training_labels = _articles(request.data, training, client, candidate.run_id)

    progress(f"evaluating on {len(articles)} articles ({request.settings.resamples} bootstrap resamples)")
    evaluation = evaluate_articles(
        candidate.model, articles, request.settings, training_labels, reference.model if reference else None
    )
    evaluation.context = _context(candidate, reference, data_context)

    progress("writing the report and logging the MLflow run")
    experiment_id = _experiment_id(client, candidate.run_id)
    staging = _new_staging(output)
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
            _put_in_place(staging, [path.name for path in written], output)
    finally:
        remove_temporary(staging)  # gone already once in place
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


def _check_output(output: Path, tracking_uri: str, client) -> None:
    """Refuse, before any run starts, an output evaluation could not fill without deleting what it did not write."""
    resolved = output.resolve()
    working = Path.cwd().resolve()
    if resolved == working or resolved in working.parents:
        raise NewsclfError(
            f"output {output} is the working folder or holds it; pass --output with a folder of its own, "
            f"such as {EVALUATION_REPORTS_DIR / 'mine'}"
        )
    for store in _tracking_paths(tracking_uri, client):
        if resolved == store or resolved in store.parents or store in resolved.parents:
            raise NewsclfError(
                f"output {output} holds or sits inside the tracking store {store}; pass --output with a folder "
                "outside it"
            )
    if os.path.lexists(output):
        _report_files(output)
    # The staging folder is made beside the output, in its parent (created if missing).
    existing = next(parent for parent in resolved.parents if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise NewsclfError(
            f"cannot write output {output}: {existing} is not a folder this process can write in; "
            "pass --output with another folder"
        )


def _tracking_paths(tracking_uri: str, client) -> list[Path]:
    """Where the tracking store keeps runs and artifacts on this machine: its SQLite file or folder, the
    local artifact roots of its experiments, and MLflow's default local roots in the working folder."""
    from mlflow.entities import ViewType

    paths = [Path("mlruns"), Path("mlartifacts")]
    if tracking_uri.startswith("sqlite:///"):
        store = Path(tracking_uri.removeprefix("sqlite:///").split("?")[0])
    else:
        store = _local_path(tracking_uri)
    if store is not None:
        paths.append(store)
        if store.exists():  # a new SQLite store would be created by asking it
            for experiment in client.search_experiments(view_type=ViewType.ALL):
                if (root := _local_path(experiment.artifact_location)) is not None:
                    paths.append(root)
    return [path.resolve() for path in paths]


def _local_path(uri: str) -> Path | None:
    """The folder a path or a file: URI names; None for a server (http:, s3:, mlflow-artifacts:, ...)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file" and not parsed.netloc:
        return Path(urllib.request.url2pathname(parsed.path))
    return Path(uri) if not parsed.scheme else None


def _report_files(folder: Path) -> list[str]:
    """The files an earlier evaluation wrote in ``folder`` as its marker lists them, when the marker and
    they are all that is inside (an empty folder lists none); otherwise the folder is refused."""
    if folder.is_symlink() or not folder.is_dir():
        kind = "a symbolic link" if folder.is_symlink() else "a file"
        raise NewsclfError(
            f"output {folder} is {kind}, not an evaluation report folder; pass --output with a new folder"
        )
    entries = set(os.listdir(folder))
    listed = _listed_files(folder) if entries else []
    foreign = sorted(entries - {_MARKER, *listed}) if listed is not None else sorted(entries)
    if listed is None or foreign or not all(stat.S_ISREG(os.lstat(folder / name).st_mode) for name in entries):
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise NewsclfError(
            f"output {folder} is not an evaluation report newsclf wrote (it holds {shown or 'other files'}); "
            "pass --output with a new folder, or move its files away yourself"
        )
    return listed


def _listed_files(folder: Path) -> list[str] | None:
    """The file names the marker in ``folder`` lists; None without a readable marker."""
    try:
        names = json.loads((folder / _MARKER).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    plain = isinstance(names, list) and all(
        isinstance(name, str) and name == Path(name).name and name not in ("", ".", "..", _MARKER) for name in names
    )
    return names if plain else None


def _new_staging(output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = temporary_beside(output)
    staging.mkdir(mode=0o777)  # the umask applies, as to any new folder (mkdtemp's would be 0700)
    return staging


def _put_in_place(staging: Path, names: list[str], output: Path) -> None:
    """Mark ``staging`` as a report and make it ``output``; an earlier report there, proven again now, goes
    aside first and is deleted (its listed files only) once the new one is in place."""
    (staging / _MARKER).write_text(
        json.dumps({"written_by": "newsclf evaluate", "files": sorted(names)}, indent=2) + "\n", encoding="utf-8"
    )
    if not os.path.lexists(output):
        staging.rename(output)
        return
    old = _report_files(output)
    aside = temporary_beside(output)
    output.rename(aside)
    try:
        staging.rename(output)
    except BaseException:
        aside.rename(output)
        raise
    try:
        for name in [*old, _MARKER]:
            (aside / name).unlink(missing_ok=True)
        aside.rmdir()
    except OSError:
        pass  # a hidden leftover, removed by a later run once this process is gone


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
