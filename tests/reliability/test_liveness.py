"""Liveness that cannot kill the living: a sweep (``newsclf doctor --fix``, or any training starting)
running beside a training that is just starting or registering leaves it alone.

Each case failed before its fix: the heartbeat tag was written after the pid, so a sweep in between
read the run as silent since 1970 and marked it KILLED; doctor then deleted the version that training
had tagged complete meanwhile; and the training registered and promoted from a run already KILLED.
"""

import time

import pytest
from mlflow.tracking import MlflowClient

from newsclf.errors import NewsclfError
from newsclf.train.tracking import doctor
from newsclf.train.tracking.registry import COMPLETE_TAG
from newsclf.train.tracking.runs import PID_TAG, liveness, require_running, stale_runs
from tests.helpers import corpus_slice, small_config, write_jsonl


@pytest.fixture
def store(tracking_uri):
    client = MlflowClient(tracking_uri)
    return client, client.create_experiment("liveness")


def test_a_sweep_between_any_two_writes_of_a_starting_run_finds_it_alive(store, tracking_uri, monkeypatch):
    client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    seen = []

    def sweep_after(write):
        def written(self, *args, **kwargs):
            result = write(self, *args, **kwargs)
            seen.extend(run.reason for run in stale_runs(client, [experiment]))
            return result

        return written

    for name in ("set_tag", "log_batch"):
        monkeypatch.setattr(MlflowClient, name, sweep_after(getattr(MlflowClient, name)))
    with liveness(tracking_uri, run_id):
        pass
    assert seen == []


def test_a_run_without_a_heartbeat_is_judged_by_its_start(store):
    client, experiment = store
    now = time.time()
    young = client.create_run(experiment, start_time=int(now * 1000), tags={PID_TAG: "1"}).info.run_id
    old = client.create_run(experiment, start_time=int((now - 1800) * 1000), tags={PID_TAG: "1"}).info.run_id
    found = {run.run_id: run.reason for run in stale_runs(client, [experiment], now=now)}
    assert set(found) == {old} and "no heartbeat for 30 minutes" in found[old]
    assert young not in found


def test_doctor_never_deletes_a_version_completed_after_it_was_listed(store, tracking_uri, monkeypatch):
    client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    client.set_terminated(run_id, "FAILED")
    client.create_registered_model("m")
    version = client.create_model_version("m", "file:///nowhere", run_id, tags={COMPLETE_TAG: "false"})
    listed = list(doctor._incomplete_versions(client, set()))
    assert [found.version for found, _ in listed] == [version.version]
    # The training completes it between the doctor's listing and its deleting.
    client.set_model_version_tag("m", version.version, COMPLETE_TAG, "true")
    monkeypatch.setattr(doctor, "_incomplete_versions", lambda *args: iter(listed))
    assert doctor.repair(tracking_uri) == []
    assert client.get_model_version("m", version.version).tags[COMPLETE_TAG] == "true"


def test_a_run_ended_by_another_process_is_said_in_one_line(store):
    client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    require_running(client, run_id)
    client.set_tag(run_id, "newsclf.ended_because", "no heartbeat for 11 minutes")
    client.set_terminated(run_id, "KILLED")
    with pytest.raises(NewsclfError, match=r"marked KILLED by another process \(no heartbeat for 11 minutes\)"):
        require_running(client, run_id)


@pytest.mark.slow  # a whole training
def test_a_training_whose_run_was_ended_meanwhile_registers_and_promotes_nothing(tmp_path, tracking_uri, monkeypatch):
    from newsclf.train import training

    config = small_config(write_jsonl(tmp_path / "small.jsonl", corpus_slice(10)))
    real = training.log_model_with_metrics

    def ended_by_a_sweep(*args, **kwargs):
        found = real(*args, **kwargs)
        client = MlflowClient(tracking_uri)
        [run] = client.search_runs([client.get_experiment_by_name(config.tracking.experiment).experiment_id])
        client.set_terminated(run.info.run_id, "KILLED")
        return found

    monkeypatch.setattr(training, "log_model_with_metrics", ended_by_a_sweep)
    with pytest.raises(NewsclfError, match="marked KILLED by another process"):
        training.run(config, tracking_uri)
    assert MlflowClient(tracking_uri).search_model_versions(f"name='{config.tracking.registered_model}'") == []
