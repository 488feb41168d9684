"""MLflow tracking shared by training and evaluation: the store check, the code version, the data
inputs, and the liveness of runs (a heartbeat, and ending the runs whose process died)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsclf._files import process_alive
from newsclf.errors import NewsclfError
from newsclf.train.config import ConfigError, DataConfig, ExperimentConfig, config_from_dict, flatten, parse_override
from newsclf.train.data.articles import Articles, LoadReport, Splits
from newsclf.train.data.sources import HUB_PREFIX, describe, parse_hub
from newsclf.train.paths import PACKAGE_DIR


def connect(tracking_uri: str) -> bool:
    """Fail with one line when the tracking store cannot be used; called before any data is read.

    Returns whether the store exists yet (a new SQLite file is left for MLflow to create when the
    first run starts, so a refused experiment leaves nothing behind).
    """
    from mlflow.tracking import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        path = local_path(tracking_uri)
        if not path.parent.is_dir():
            raise NewsclfError(
                f"tracking store {tracking_uri}: folder {path.parent} does not exist; "
                "create it or pass another --tracking-uri"
            )
        if not path.exists():
            if not os.access(path.parent, os.W_OK):
                raise NewsclfError(f"tracking store {tracking_uri}: cannot create it, {path.parent} is read-only")
            return False
    try:
        MlflowClient(tracking_uri).search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises many types for an unusable store
        if "database is locked" in str(exc):
            raise  # reachable but busy: a failure of the store (exit 1, with the advice to wait), not of the user
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise NewsclfError(
            f"tracking store {tracking_uri} is unreachable ({reason}); start it or pass --tracking-uri"
        ) from None
    return True


# How long a process waits for another's hold on a store lock before it gives up.
LOCK_TIMEOUT_SECONDS = 600.0


@contextlib.contextmanager
def store_lock(tracking_uri: str, purpose: str, busy: str) -> Iterator[None]:
    """Exclusive hold on ``purpose`` for a local store (a lock file beside it) among the processes on
    this machine; nothing for a server, which serialises its own writes. ``busy`` says who holds it."""
    import fcntl

    store = local_path(tracking_uri)
    folder = store.parent if store is not None and tracking_uri.startswith("sqlite:///") else store
    if folder is None:
        yield
        return
    path = folder / f".newsclf-{purpose}.lock"
    with open(path, "a+b") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise NewsclfError(
                        f"{busy} for {LOCK_TIMEOUT_SECONDS:.0f} s (lock {path}); wait for it or end it, then try again"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def create_store(tracking_uri: str) -> None:
    """Create and migrate a new SQLite store, or wait while another process does: two first trainings
    migrating one new file at once failed, once leaving it half-migrated and unusable."""
    from mlflow.tracking import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        with store_lock(tracking_uri, "store", f"another process has been creating {tracking_uri}"):
            MlflowClient(tracking_uri).search_experiments(max_results=1)


def local_path(uri: str) -> Path | None:
    """The file or folder a ``sqlite:///``, ``file:`` or plain-path URI names on this machine (a SQLite
    store's database file); None for a server (http:, s3:, mlflow-artifacts:, ...)."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///").split("?")[0])
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file" and not parsed.netloc:
        return Path(urllib.request.url2pathname(parsed.path))
    return Path(uri) if not parsed.scheme else None


def git_commit() -> str:
    """The project's git commit, ``-dirty`` when the work tree has changes; ``unknown`` outside git."""
    try:
        result = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), "status", "--porcelain"], capture_output=True, text=True, timeout=5
        )
        return result.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# The MLflow input context of each split (MLflow's UI names the training data "training").
_CONTEXTS = {"train": "training", "validation": "validation", "test": "test"}


def log_data_report(splits: Splits, data: DataConfig) -> dict[str, Any]:
    """Dataset inputs per split, the data summary, what de-duplication removed and the data counts
    (as params), on the active run; the MLflow datasets by split name, to link metrics to."""
    import mlflow

    report = splits.report
    datasets = {}
    for split, context in _CONTEXTS.items():
        if len(articles := getattr(splits, split)):
            datasets[split] = log_articles_input(articles, data, report, context)
    mlflow.log_dict(splits.summary(), "data/summary.json")
    log_review_files(data, report)
    mlflow.log_dict(
        {
            "removed": report.duplicates_removed,
            "groups": len(report.duplicate_groups),
            "groups_with_conflicting_labels": report.conflicting_groups,
            "sample_groups": report.duplicate_groups[:50],
        },
        "data/duplicates.json",
    )
    log_data_counts(report, {split: len(getattr(splits, split)) for split in _CONTEXTS})
    return datasets


def log_data_counts(report: LoadReport, articles_per_split: Mapping[str, int], **more: int) -> None:
    """The data counts of a training run as params (``dataset.*``; MLflow would chart metrics): rows
    read, what loading dropped, the articles per split, and ``more``."""
    import mlflow

    counts = {
        "rows_read": report.rows,
        "skipped_empty_rows": report.skipped_empty,
        "dropped_by_label": sum(report.dropped_by_label.values()),
        "duplicates_removed": report.duplicates_removed,
    }
    counts |= {f"{split}_articles": n for split, n in articles_per_split.items()} | more
    mlflow.log_params({f"dataset.{name}": value for name, value in counts.items()})


def log_split_metrics(
    metrics: Mapping[str, float], datasets: Mapping[str, Any], model_id: str, run_only: Iterable[str] = ()
) -> None:
    """``<split>/...`` metrics on the active run and on logged model ``model_id``, each split's linked to
    its dataset in ``datasets`` (MLflow keeps that link only for a model's metrics); splits in
    ``run_only`` are logged on the run alone."""
    import mlflow

    by_split: dict[str, dict[str, float]] = {}
    for name, value in metrics.items():
        by_split.setdefault(name.partition("/")[0], {})[name] = value
    for split, values in by_split.items():
        if split in run_only:
            mlflow.log_metrics(values)
        else:
            mlflow.log_metrics(values, model_id=model_id, dataset=datasets.get(split))


def log_streamed_inputs(data: DataConfig, report: LoadReport, articles_per_split: Mapping[str, int]) -> dict[str, Any]:
    """The splits of streamed data as dataset inputs of the active run, each described by its source
    and a digest of the data and split (MLflow's MetaDataset: streaming never holds the rows); the
    MLflow datasets by split name, to link metrics to."""
    from mlflow.data.meta_dataset import MetaDataset

    datasets = {}
    for split, context in _CONTEXTS.items():
        if articles_per_split.get(split):
            digest = hashlib.sha256(f"{report.fingerprint}:{split}".encode()).hexdigest()[:8]
            name = f"{Path(report.source).stem}-{context}"
            datasets[split] = _log_input(MetaDataset(_dataset_source(data), name=name, digest=digest), context)
    return datasets


def log_articles_input(articles: Articles, data: DataConfig, report: LoadReport, context: str):
    """``articles`` as a dataset input of the active run, named after the data and ``context``; the
    MLflow dataset returned."""
    import mlflow
    import pandas as pd

    frame = pd.DataFrame(
        {
            "id": articles.ids,
            "text": articles.texts,
            "topic": articles.topics,
            "tone": articles.tones,
            "date": articles.dates,
        }
    )
    name = f"{Path(report.source).stem}-{context}"
    return _log_input(
        mlflow.data.from_pandas(frame, source=_dataset_source(data), name=name, targets="topic"), context
    )


def _log_input(dataset, context: str):
    """``dataset`` as an input of the active run in ``context``; returned."""
    import mlflow

    try:
        mlflow.log_input(dataset, context=context)
    except Exception as exc:  # MLflow's SQL store wraps the database's error in its own types
        # Two trainings logging the same data into one experiment at once race in MLflow's store
        # (check, then insert): the loser finds the winner's row on a second try.
        if "UNIQUE constraint failed: datasets" not in str(exc):
            raise
        mlflow.log_input(dataset, context=context)
    return dataset


def log_review_files(data: DataConfig, report: LoadReport) -> None:
    """The corrections file and the label issues loading applied, as artifacts with their SHA-256 as tags,
    and what they changed as params, on the active run."""
    import mlflow

    review = report.review
    for key, path, tag in (
        ("corrections", data.corrections, "data_corrections_sha256"),
        ("label_issues_excluded", data.label_issues, "data_label_issues_sha256"),
    ):
        if key in review:
            mlflow.log_artifact(path, "data/review")
            mlflow.set_tag(tag, review[key]["sha256"])
    counts = {}
    if "corrections" in review:
        corrections = review["corrections"]
        counts["dataset.corrections_relabelled"] = sum(corrections["relabelled"].values())
        counts["dataset.corrections_dropped"] = corrections["dropped"]
    if "label_issues_excluded" in review:
        counts["dataset.label_issues_excluded"] = review["label_issues_excluded"]["excluded"]
    mlflow.log_params(counts)


def _dataset_source(data: DataConfig):
    """Where the data came from, for MLflow's dataset lineage."""
    # The hub prefix alone decides: a glob of local files has no suffix to detect a format from.
    if data.format == "hub" or data.source.startswith(HUB_PREFIX):
        from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

        name, revision = parse_hub(data.source)
        return HuggingFaceDatasetSource(path=name, revision=revision, split=data.split_name)
    return local_dataset_source(describe(data.source))


def local_dataset_source(path: str):
    """A local file or folder as MLflow's local dataset source, its absolute path as the URI (not, as
    a Hugging Face source would show it, a hub dataset named after the file format)."""
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with warnings.catch_warnings():
        # MLflow registers its local-file source class twice and warns that the path is ambiguous.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        return resolve_dataset_source(str(Path(path).resolve()))


# A live run rewrites its heartbeat tag this often; a run whose heartbeat is this old is stale.
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 600.0
PID_TAG, HOST_TAG, HEARTBEAT_TAG = "newsclf.pid", "newsclf.host", "newsclf.heartbeat"


@contextlib.contextmanager
def liveness(tracking_uri: str, run_id: str) -> Iterator[None]:
    """Record which process runs ``run_id`` and keep a heartbeat on it while the block runs, so a
    later :func:`stale_runs` can tell a run whose process died (kill -9, a lost machine) from a live one."""
    from mlflow.entities import RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    # One write: a sweep between separate ones saw a pid without a heartbeat and judged the run dead.
    identity = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), HEARTBEAT_TAG: _now()}
    client.log_batch(run_id, tags=[RunTag(key, value) for key, value in identity.items()])
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                client.set_tag(run_id, HEARTBEAT_TAG, _now())
            except Exception:  # a store error surfaces in the main thread's next write, with its own message
                pass

    thread = threading.Thread(target=beat, name=f"newsclf-heartbeat-{run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class StaleRun:
    """A run still RUNNING in the store whose process is gone, and how that is known."""

    run_id: str
    experiment_id: str
    name: str
    reason: str


def stale_runs(client, experiment_ids: list[str], now: float | None = None) -> list[StaleRun]:
    """RUNNING newsclf runs whose process is gone: on this host a pid that no longer exists, anywhere a
    heartbeat older than :data:`STALE_AFTER_SECONDS`; and the RUNNING nested runs of those."""
    now = time.time() if now is None else now
    running = _running_runs(client, experiment_ids)
    stale = {}
    for run in running:
        tags = run.data.tags
        if PID_TAG not in tags:
            continue  # not started by a newsclf that keeps a heartbeat: nothing to judge it by
        reason = _why_stale(tags, run.info.start_time / 1000, now)
        if reason:
            stale[run.info.run_id] = StaleRun(run.info.run_id, run.info.experiment_id, run.info.run_name, reason)
    for run in running:
        parent = run.data.tags.get("mlflow.parentRunId")
        if parent in stale and run.info.run_id not in stale:
            reason = f"its parent run {parent} is stale"
            stale[run.info.run_id] = StaleRun(run.info.run_id, run.info.experiment_id, run.info.run_name, reason)
    return list(stale.values())


def require_running(client, run_id: str) -> None:
    """Refuse to go on (register, promote) with a run another process has ended, naming why it did."""
    run = client.get_run(run_id)
    if run.info.status != "RUNNING":
        why = run.data.tags.get("newsclf.ended_because", "no reason recorded")
        raise NewsclfError(
            f"run {run_id} was marked {run.info.status} by another process ({why}) before its model was "
            "registered; nothing was registered or promoted, train again"
        )


def end_stale_runs(client, experiment_ids: list[str]) -> list[StaleRun]:
    """Mark every :func:`stale_runs` run KILLED, with the reason as a tag; returns them."""
    found = stale_runs(client, experiment_ids)
    for run in found:
        client.set_tag(run.run_id, "newsclf.ended_because", run.reason)
        client.set_terminated(run.run_id, status="KILLED")
    return found


def _running_runs(client, experiment_ids: list[str]) -> list:
    from mlflow.entities import ViewType

    if not experiment_ids:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs(
            experiment_ids, "attributes.status = 'RUNNING'", ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
        )
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _why_stale(tags: dict[str, str], started: float, now: float) -> str:
    if tags.get(HOST_TAG) == socket.gethostname() and not process_alive(int(tags[PID_TAG])):
        return f"process {tags[PID_TAG]} on {tags[HOST_TAG]} is gone"
    try:
        # A run without a heartbeat yet is judged by when it started, never as silent since 1970.
        silent = now - float(tags.get(HEARTBEAT_TAG, started))
    except ValueError:
        silent = now - started
    if silent > STALE_AFTER_SECONDS:
        return f"no heartbeat for {silent / 60:.0f} minutes (process {tags[PID_TAG]} on {tags.get(HOST_TAG, '?')})"
    return ""


def _now() -> str:
    return f"{time.time():.0f}"


# The logged params that decide which articles a run trained, validated and tested on.
_DATA_PARAMS = ("seed", "data.", "split.", "dedup.")


def run_config(client, run_id: str | None) -> ExperimentConfig | None:
    """The data, split, de-duplication and seed of a training run, rebuilt from its logged params;
    None for no run, or a run logged by a newsclf whose params this one cannot read."""
    if not run_id:
        return None
    return config_from_params(client.get_run(run_id).data.params, f"run {run_id}")


def config_from_params(params: Mapping[str, str], source: str) -> ExperimentConfig | None:
    """:func:`run_config` from a run's params as MLflow returns them (every value a string)."""
    raw: dict[str, Any] = {"name": params.get("name", "training-run")}
    for key, value in params.items():
        if key.startswith(_DATA_PARAMS):
            *sections, leaf = key.split(".")
            node = raw
            for section in sections:
                node = node.setdefault(section, {})
            node[leaf] = parse_override(f"{key}={value}")[1]
    try:
        return config_from_dict(raw, source=source)
    except ConfigError:
        return None


# The tag MLflow 3's UI reads to open an experiment on its training runs rather than GenAI traces.
_EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def use_experiment(name: str, description: str) -> str:
    """Make ``name`` the active experiment (created if missing), marked as model development so the UI
    opens on its runs, with ``description`` unless it already has one; returns its id."""
    import mlflow
    from mlflow.tracking import MlflowClient

    # Two trainings starting together on one SQLite file both inserted the same new tag (a UNIQUE
    # constraint failure killed one), so creating and tagging happen under a lock.
    tracking_uri = mlflow.get_tracking_uri()
    with store_lock(tracking_uri, "experiment", f"another process has been creating experiment {name!r}"):
        experiment = mlflow.set_experiment(name)
        client = MlflowClient()
        for key, value in _EXPERIMENT_KIND.items():
            if experiment.tags.get(key) != value:
                client.set_experiment_tag(experiment.experiment_id, key, value)
        if not experiment.tags.get("mlflow.note.content"):
            client.set_experiment_tag(experiment.experiment_id, "mlflow.note.content", description)
    return experiment.experiment_id


def run_name(config: ExperimentConfig) -> str:
    """A run name that says which experiment, when, and which settings: ``default-20261201-1532-3fa2c1``."""
    settings = json.dumps(flatten(config), sort_keys=True, default=str)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{config.name}-{stamp}-{hashlib.sha256(settings.encode()).hexdigest()[:6]}"


def run_tags(config: ExperimentConfig, report: LoadReport) -> dict[str, str]:
    """The tags of a training run: its description, the code version as MLflow names it, and its data."""
    tags = {"data_fingerprint": report.fingerprint, "data_source": report.source}
    commit = git_commit()
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")
        tags["newsclf.git_dirty"] = str(commit.endswith("-dirty")).lower()
    if config.description.strip():
        tags["mlflow.note.content"] = config.description.strip()
    return tags
