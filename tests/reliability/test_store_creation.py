"""Processes that start on one new SQLite store at once create and migrate it one at a time (before,
two first trainings together failed, once leaving the store half-migrated and unusable)."""

import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

_FIRST_USE = """
import sys
from newsclf.train.tracking.runs import create_store, use_experiment
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
create_store(sys.argv[1])
use_experiment(sys.argv[2], "test")
"""


@pytest.mark.slow  # four processes importing MLflow
def test_processes_starting_on_one_new_store_all_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    processes = [
        subprocess.Popen([sys.executable, "-c", _FIRST_USE, uri, f"e{n}"], stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    errors = [process.communicate(timeout=300)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], errors
    names = {experiment.name for experiment in MlflowClient(uri).search_experiments()}
    assert {"e0", "e1", "e2", "e3"} <= names
