"""--resume continues only a run that is really dead, from a checkpoint that is whole.

Before: a run still alive was resumed (both finished, two versions from one run), and a truncated,
random or empty checkpoint gave a traceback, with nothing to fall back on."""

import os
import socket
import time

import joblib
import pytest
from mlflow.tracking import MlflowClient

from newsclf.errors import NewsclfError
from newsclf.train.config import config_from_dict
from newsclf.train.fit import streaming
from newsclf.train.tracking.runs import HEARTBEAT_TAG, HOST_TAG, PID_TAG
from newsclf.train.training import run as train

SGD = {"kind": "sgd_logistic"}


def _config(source="unused.jsonl"):
    return config_from_dict(
        {
            "name": "resumable",
            "data": {"source": str(source)},
            "fit": {"mode": "streaming"},
            "topic": SGD,
            "tone": SGD,
            "tracking": {"experiment": "resumable", "registered_model": "resumable"},
        }
    )


@pytest.fixture
def killed_run(tracking_uri):
    """A streaming run ended as a killed one is, with its config's params: (client, run id)."""
    from newsclf.train.config import flatten

    client = MlflowClient(tracking_uri)
    run_id = client.create_run(client.create_experiment("resumable")).info.run_id
    for key, value in flatten(_config()).items():
        client.log_param(run_id, key, value)
    client.set_terminated(run_id, "KILLED")
    return client, run_id


def _slot(client, run_id, slot, content, tmp_path):
    path = tmp_path / slot / streaming.CHECKPOINT
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content) if isinstance(content, bytes) else joblib.dump(content, path)
    client.log_artifact(run_id, str(path), f"{streaming.CHECKPOINT_FOLDER}/{slot}")


def _state(epoch):
    return streaming._State(epoch, {}, {})


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(killed_run, tmp_path):
    client, run_id = killed_run
    _slot(client, run_id, "odd", _state(3), tmp_path)
    _slot(client, run_id, "even", b"\x80\x04truncated", tmp_path)  # epoch 4, killed while written
    assert streaming.resumed_state(client, _config(), run_id).epoch == 3


@pytest.mark.parametrize("content", [b"", b"\x80\x04truncated", os.urandom(256), {"not": "a state"}])
def test_a_checkpoint_that_is_not_a_whole_one_is_one_line(killed_run, tmp_path, content):
    client, run_id = killed_run
    _slot(client, run_id, "odd", content, tmp_path)
    with pytest.raises(NewsclfError, match=f"run {run_id} has no usable checkpoint .*damaged.*start a new run"):
        streaming.resumed_state(client, _config(), run_id)


def test_a_run_still_alive_is_not_resumed(tracking_uri, tmp_path):
    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("resumable")
    alive = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), HEARTBEAT_TAG: f"{time.time():.0f}"}
    run_id = client.create_run(experiment, tags=alive).info.run_id
    with pytest.raises(NewsclfError, match=f"run {run_id} is still running \\(process {os.getpid()}\\)"):
        train(_config(tmp_path / "unused.jsonl"), tracking_uri, resume=run_id)
    assert client.get_run(run_id).info.status == "RUNNING"
