"""Killed and concurrent trainings: what they leave in the store, and that nothing of it is promoted.

Each case failed before the fix it names: a killed run stayed RUNNING forever; a kill right after
registration left a READY version that looked like any good one; two trainings finishing together
both took the champion alias.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from newsclf.train.cli import main
from tests.helpers import corpus_slice, write_jsonl

pytestmark = pytest.mark.slow

# Trains the small slice through the real CLI; argv[1] is the store, argv[2] the data, argv[3] a
# registry tag key on whose writing the process dies at once (kill -9 semantics: nothing runs after).
_TRAIN = """
import os, sys
from mlflow.tracking import MlflowClient
die_on = sys.argv[3]
if die_on:
    real = MlflowClient.set_model_version_tag
    def dying(self, name, version, key, value):
        if key == die_on:
            os._exit(9)
        return real(self, name, version, key, value)
    MlflowClient.set_model_version_tag = dying
from newsclf.train.cli import main
sys.exit(main(["train", "--quiet", "--tracking-uri", sys.argv[1], "--data", sys.argv[2],
               "--set", "features.char.ngram_range=[3,4]", "--set", "tracking.registered_model=test-model"]))
"""


def _train(store: str, data, die_on: str = "") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _TRAIN, store, str(data), die_on],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


@pytest.fixture
def slice_file(tmp_path):
    return write_jsonl(tmp_path / "slice.jsonl", corpus_slice(10))


def _doctor(store: str, *flags: str, capsys) -> tuple[int, list[str]]:
    code = main(["doctor", "--tracking-uri", store, *flags])
    return code, capsys.readouterr().out.strip().splitlines()


def test_a_run_killed_mid_training_is_found_and_ended_not_left_running(tmp_path, slice_file, capsys):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(store)
    # Create the store's tables before the training starts: two processes creating them at once race.
    client.search_experiments()
    process = _train(store, slice_file)
    experiment = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:  # wait for its run, then kill -9
        experiment = client.get_experiment_by_name("news-classifier")
        if experiment and client.search_runs([experiment.experiment_id]):
            break
        time.sleep(0.2)
    alive = process.poll() is None
    process.send_signal(signal.SIGKILL)
    _, _, err = _finish(process)
    assert alive and experiment, f"the training ended or never started a run before the kill:\n{err}"
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "RUNNING"
    code, lines = _doctor(store, capsys=capsys)
    assert code == 3 and lines == [
        f"found: stale run {run.info.run_id} ({run.info.run_name}, experiment {experiment.experiment_id}): "
        f"process {process.pid} on {os.uname().nodename} is gone"
    ]
    assert _doctor(store, "--fix", capsys=capsys)[0] == 0
    assert client.get_run(run.info.run_id).info.status == "KILLED"
    assert _doctor(store, capsys=capsys)[0] == 0


def test_a_kill_right_after_registration_leaves_a_version_that_says_it_is_incomplete(tmp_path, slice_file, capsys):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert _finish(_train(store, slice_file, die_on="validation_score"))[0] == 9
    client = MlflowClient(store, registry_uri=store)
    (version,) = client.search_model_versions("name = 'test-model'")
    assert version.tags["newsclf.complete"] == "false" and "validation_score" not in version.tags
    assert not client.get_registered_model("test-model").aliases  # never promoted
    code, lines = _doctor(store, capsys=capsys)
    assert code == 3 and f"found: incomplete version test-model/{version.version}: registration never completed" in (
        "\n".join(lines)
    )
    # The next training ends the dead run and, as the first complete version, becomes champion.
    code, _, err = _finish(_train(store, slice_file))
    assert code == 0, err
    assert str(client.get_model_version_by_alias("test-model", "champion").version) == "2"
    assert _doctor(store, "--fix", capsys=capsys)[0] == 0
    assert [str(v.version) for v in client.search_model_versions("name = 'test-model'")] == ["2"]


def test_two_trainings_finishing_together_cannot_both_take_the_alias(tmp_path, slice_file):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # Create the store first, so the two processes do not race to create its tables.
    MlflowClient(store).search_experiments()
    racers = [_train(store, slice_file) for _ in range(2)]
    outputs = []
    for racer in racers:
        code, out, err = _finish(racer)
        assert code == 0, err
        outputs.append(out)
    promoted = [output for output in outputs if "promoted to @champion" in output]
    assert len(promoted) == 1, outputs
    client = MlflowClient(store, registry_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("news-classifier").experiment_id])
    verdicts = sorted(run.data.tags["promotion_verdict"] for run in runs)
    # The loser was judged against the winner, whichever read the empty registry first.
    assert verdicts == ["first version", "no significant difference"], json.dumps(verdicts)
