"""Run liveness: the heartbeat a training keeps, and telling runs whose process died from live ones."""

import os
import subprocess
import sys
import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from newsclf.train.tracking import runs as tracking
from newsclf.train.tracking.runs import HEARTBEAT_TAG, HOST_TAG, PID_TAG, end_stale_runs, liveness, stale_runs
from tests.helpers import new_store


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _run(client, experiment_id, **tags):
    run = client.create_run(experiment_id, run_name=tags.pop("name", "r"), tags=tags)
    return run.info.run_id


@pytest.fixture
def store(tracking_uri):
    client = MlflowClient(tracking_uri)
    return client, client.create_experiment("liveness")


def test_a_run_whose_process_is_gone_or_silent_is_stale_and_a_live_one_is_not(store):
    client, experiment = store
    host, now = tracking.socket.gethostname(), time.time()
    live = _run(client, experiment, **{PID_TAG: str(os.getpid()), HOST_TAG: host, HEARTBEAT_TAG: f"{now:.0f}"})
    dead = _run(client, experiment, **{PID_TAG: str(_dead_pid()), HOST_TAG: host, HEARTBEAT_TAG: f"{now:.0f}"})
    silent = _run(client, experiment, **{PID_TAG: "1", HOST_TAG: "elsewhere", HEARTBEAT_TAG: f"{now - 3600:.0f}"})
    child = _run(client, experiment, **{"mlflow.parentRunId": dead})
    untagged = _run(client, experiment)  # not started by a newsclf that keeps a heartbeat: left alone
    found = {run.run_id: run.reason for run in stale_runs(client, [experiment])}
    assert set(found) == {dead, silent, child}
    assert "is gone" in found[dead] and "no heartbeat for 60 minutes" in found[silent]
    assert found[child] == f"its parent run {dead} is stale"
    ended = end_stale_runs(client, [experiment])
    assert {run.run_id for run in ended} == {dead, silent, child}
    assert {client.get_run(run_id).info.status for run_id in (dead, silent, child)} == {"KILLED"}
    assert client.get_run(dead).data.tags["newsclf.ended_because"] == found[dead]
    assert client.get_run(live).info.status == client.get_run(untagged).info.status == "RUNNING"


def test_liveness_tags_the_run_and_keeps_its_heartbeat_until_the_block_ends(store, tracking_uri, monkeypatch):
    client, experiment = store
    monkeypatch.setattr(tracking, "HEARTBEAT_SECONDS", 0.05)
    run_id = _run(client, experiment)
    with liveness(tracking_uri, run_id):
        first = client.get_run(run_id).data.tags
        assert first[PID_TAG] == str(os.getpid()) and first[HOST_TAG] == tracking.socket.gethostname()
        monkeypatch.setattr(tracking, "_now", lambda: "123")
        deadline = time.monotonic() + 10
        while client.get_run(run_id).data.tags[HEARTBEAT_TAG] != "123" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get_run(run_id).data.tags[HEARTBEAT_TAG] == "123"
    monkeypatch.setattr(tracking, "_now", lambda: "456")
    time.sleep(0.2)
    assert client.get_run(run_id).data.tags[HEARTBEAT_TAG] == "123"  # the heartbeat stopped with the block


@pytest.mark.slow
def test_a_training_marks_the_stale_runs_of_its_experiment_killed_before_it_starts(tmp_path, small_corpus):
    from newsclf.train.training import run as train
    from tests.helpers import small_config

    uri = new_store(tmp_path / "mlflow.db")
    config = small_config(small_corpus)
    client = MlflowClient(uri)
    experiment = client.create_experiment(config.tracking.experiment)
    dead = _run(client, experiment, **{PID_TAG: str(_dead_pid()), HOST_TAG: tracking.socket.gethostname()})
    mlflow.set_tracking_uri(uri)
    messages = []
    train(config, uri, messages.append)
    assert client.get_run(dead).info.status == "KILLED"
    assert any(f"marked run {dead}" in message for message in messages)


def test_a_dataset_another_training_logged_at_the_same_moment_is_linked_not_an_error(tracking_uri, monkeypatch):
    from newsclf.train.config import DataConfig
    from newsclf.train.data.articles import LoadReport
    from newsclf.train.tracking.runs import log_articles_input
    from tests.helpers import as_articles, corpus_slice

    real, calls = mlflow.log_input, []

    def racing(dataset, context=None, **kwargs):
        calls.append(context)
        if len(calls) == 1:  # what MLflow's SQL store raises when the other training inserted it first
            raise mlflow.exceptions.MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.name")
        return real(dataset, context=context, **kwargs)

    monkeypatch.setattr(mlflow, "log_input", racing)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("race")
    report = LoadReport(source="/data/wire.jsonl", fingerprint="f" * 64, rows=3)
    with mlflow.start_run() as run:
        log_articles_input(as_articles(corpus_slice(1)[:3]), DataConfig(), report, "training")
    assert calls == ["training", "training"]
    assert [i.dataset.name for i in MlflowClient(tracking_uri).get_run(run.info.run_id).inputs.dataset_inputs] == [
        "wire-training"
    ]
