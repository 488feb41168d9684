"""``newsclf doctor``: what a killed or failed training left behind in a tracking store, and its repair.

Two things can be left: runs still RUNNING whose process is gone (kill -9, a lost machine; see
:func:`newsclf.train.tracking.runs.stale_runs`), and registered versions that never completed registering (see
:func:`newsclf.train.tracking.registry.register`). Neither is ever promoted; the doctor names them and, asked to,
marks the runs KILLED and deletes the versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsclf.train.tracking.registry import is_complete
from newsclf.train.tracking.runs import connect, end_stale_runs, stale_runs


@dataclass(frozen=True)
class Finding:
    """One thing left behind, and whether it was repaired."""

    kind: str
    subject: str
    detail: str
    fixed: bool = False

    def line(self) -> str:
        """One line for the terminal."""
        return f"{'fixed' if self.fixed else 'found'}: {self.kind} {self.subject}: {self.detail}"


def examine(tracking_uri: str) -> list[Finding]:
    """Stale runs and incomplete versions in the store, changing nothing."""
    client = _client(tracking_uri)
    stale = stale_runs(client, _experiment_ids(client))
    return [_run_finding(run) for run in stale] + [
        _version_finding(version, why) for version, why in _incomplete_versions(client, {run.run_id for run in stale})
    ]


def repair(tracking_uri: str) -> list[Finding]:
    """Mark stale runs KILLED, then delete the incomplete versions whose registering process is gone."""
    client = _client(tracking_uri)
    ended = end_stale_runs(client, _experiment_ids(client))
    findings = [_run_finding(run, fixed=True) for run in ended]
    for version, why in _incomplete_versions(client, {run.run_id for run in ended}):
        # Read again just before deleting: a training may have completed it since it was listed.
        if is_complete(client.get_model_version(version.name, version.version)):
            continue
        client.delete_model_version(version.name, version.version)
        findings.append(_version_finding(version, why, fixed=True))
    return findings


def _client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    connect(tracking_uri)
    return MlflowClient(tracking_uri, registry_uri=tracking_uri)


def _experiment_ids(client) -> list[str]:
    return [experiment.experiment_id for experiment in client.search_experiments()]


def _incomplete_versions(client, stale_run_ids: set[str]):
    """(version, why) for versions that did not finish registering and whose run is not still at it."""
    for model in _all(client.search_registered_models):
        for version in _all(client.search_model_versions, f"name = '{model.name}'"):
            if is_complete(version):
                continue
            run_status = _run_status(client, version.run_id)
            if run_status == "RUNNING" and version.run_id not in stale_run_ids:
                continue  # its training is still registering it
            yield version, f"registration never completed (its run is {run_status or 'gone'})"


def _run_status(client, run_id: str | None) -> str | None:
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        return client.get_run(run_id).info.status
    except MlflowException:
        return None


def _all(search, *args):
    """Every item of a paged MLflow search."""
    token = None
    while True:
        page = search(*args, page_token=token) if args else search(page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _run_finding(run, fixed: bool = False) -> Finding:
    return Finding("stale run", f"{run.run_id} ({run.name}, experiment {run.experiment_id})", run.reason, fixed)


def _version_finding(version, why: str, fixed: bool = False) -> Finding:
    return Finding("incomplete version", f"{version.name}/{version.version}", why, fixed)
