"""MLflow tracking shared by training and evaluation: the store check, the code version, the data
inputs, and the liveness of runs (a heartbeat, and ending the runs whose process died)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsclf._files import process_alive
from newsclf.errors import NewsclfError
from train.config import ConfigError, DataConfig, ExperimentConfig, config_from_dict, parse_override
from train.data import Splits
from train.paths import PACKAGE_DIR
from train.sources import describe, detect_format, parse_hub


def connect(tracking_uri: str) -> bool:
    """Fail with one line when the tracking store cannot be used; called before any data is read.

    Returns whether the store exists yet (a new SQLite file is left for MLflow to create when the
    first run starts, so a refused experiment leaves nothing behind).
    """
    from mlflow.tracking import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
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
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise NewsclfError(
            f"tracking store {tracking_uri} is unreachable ({reason}); start it or pass --tracking-uri"
        ) from None
    return True


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


def log_data_report(splits: Splits, data: DataConfig) -> None:
    """Dataset inputs per split, the data summary, and what de-duplication removed, on the active run."""
    import mlflow
    import pandas as pd

    report = splits.report
    source = _dataset_source(data)
    stem = Path(report.source).stem
    for context, articles in (("training", splits.train), ("validation", splits.validation), ("test", splits.test)):
        if not len(articles):
            continue
        frame = pd.DataFrame(
            {
                "id": articles.ids,
                "text": articles.texts,
                "topic": articles.topics,
                "tone": articles.tones,
                "date": articles.dates,
            }
        )
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


# A live run rewrites its heartbeat tag this often; a run whose heartbeat is this old is stale.
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 600.0
PID_TAG, HOST_TAG, HEARTBEAT_TAG = "newsclf.pid", "newsclf.host", "newsclf.heartbeat"


@contextlib.contextmanager
def liveness(tracking_uri: str, run_id: str) -> Iterator[None]:
    """Record which process runs ``run_id`` and keep a heartbeat on it while the block runs, so a
    later :func:`stale_runs` can tell a run whose process died (kill -9, a lost machine) from a live one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    client.set_tag(run_id, PID_TAG, str(os.getpid()))
    client.set_tag(run_id, HOST_TAG, socket.gethostname())
    client.set_tag(run_id, HEARTBEAT_TAG, _now())
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
        reason = _why_stale(tags, now)
        if reason:
            stale[run.info.run_id] = StaleRun(run.info.run_id, run.info.experiment_id, run.info.run_name, reason)
    for run in running:
        parent = run.data.tags.get("mlflow.parentRunId")
        if parent in stale and run.info.run_id not in stale:
            reason = f"its parent run {parent} is stale"
            stale[run.info.run_id] = StaleRun(run.info.run_id, run.info.experiment_id, run.info.run_name, reason)
    return list(stale.values())


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


def _why_stale(tags: dict[str, str], now: float) -> str:
    if tags.get(HOST_TAG) == socket.gethostname() and not process_alive(int(tags[PID_TAG])):
        return f"process {tags[PID_TAG]} on {tags[HOST_TAG]} is gone"
    try:
        silent = now - float(tags.get(HEARTBEAT_TAG, "0"))
    except ValueError:
        silent = float("inf")
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
    params = client.get_run(run_id).data.params
    raw: dict[str, Any] = {"name": params.get("name", "training-run")}
    for key, value in params.items():
        if key.startswith(_DATA_PARAMS):
            *sections, leaf = key.split(".")
            node = raw
            for section in sections:
                node = node.setdefault(section, {})
            node[leaf] = parse_override(f"{key}={value}")[1]
    try:
        return config_from_dict(raw, source=f"run {run_id}")
    except ConfigError:
        return None
