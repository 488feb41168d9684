"""A Dask cluster for training and scoring: connecting to one (or starting one on this machine), and
running a training's work on it (search candidates, streamed batches to hash).

The served package never imports dask; this module imports it only inside its functions, so training
without ``--cluster`` does not pay for it. Workers run functions by reference, so they need this
project installed (the same version), and every path handed to them (inputs, output folder, a model folder
or a ``sqlite:///`` store) must be the same on every machine: a shared file system. Scoring files on a
cluster is newsclf.train.jobs.score.
"""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from newsclf.errors import NewsclfError

LOCAL = "local"
# Long enough for a scheduler across a slow network, short enough that a wrong address fails well within 30 s.
CONNECT_SECONDS = 10
# The cluster `newsclf train --cluster` fits search candidates or hashes streamed batches on, while
# train_on_cluster() is open.
_training_client: ContextVar[Any] = ContextVar("newsclf_training_client", default=None)
# Batches in flight per worker in ordered_map: one computing, one queued, so no worker waits.
_BATCHES_PER_WORKER = 2

__all__ = ["LOCAL", "candidate_backend", "connect", "ordered_map", "train_on_cluster"]


@contextlib.contextmanager
def connect(address: str, timeout: float = CONNECT_SECONDS) -> Iterator[Any]:
    """A Dask client on the scheduler at ``address`` (``tcp://host:port``), or on a new local cluster sized to
    this machine for ``local``: one single-threaded worker process per core, since tokenizing holds the GIL."""
    from distributed import Client, LocalCluster

    if address == LOCAL:
        # Scheduler, workers and dashboard on this machine's loopback only (the dashboard is unauthenticated);
        # port 0: any free one (by default the dashboard takes 8787 and warns when another cluster holds it).
        with (
            LocalCluster(
                n_workers=os.cpu_count() or 1,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise NewsclfError(
            f"cannot reach a Dask scheduler at {address} ({str(exc).splitlines()[0]}); start one with "
            "`dask scheduler` and pass its tcp://host:port, or pass --cluster local"
        ) from None
    with client:
        yield client


@contextlib.contextmanager
def train_on_cluster(address: str) -> Iterator[Any]:
    """While open, :func:`newsclf.train.training.train` fits its search candidates (see :func:`candidate_backend`)
    or, streaming, cleans and hashes its batches (see :func:`ordered_map`) on the cluster at ``address``;
    everything else stays in this process."""
    with connect(address) as client:
        token = _training_client.set(client)
        try:
            yield client
        finally:
            _training_client.reset(token)


def candidate_backend() -> contextlib.AbstractContextManager:
    """joblib's ``dask`` backend on the cluster of :func:`train_on_cluster` when one is open, else nothing
    (joblib's default: candidates one after another in this process)."""
    import joblib

    client = _training_client.get()
    if client is None:
        return contextlib.nullcontext()
    return joblib.parallel_config(backend="dask", client=client)


def ordered_map(function: Callable[..., Any], items: Iterable[Any], *shared: Any) -> Iterator[Any]:
    """``function(item, *shared)`` for each item, in the items' order: on the workers of the cluster of
    :func:`train_on_cluster` when one is open (``shared`` sent to each worker once; at most
    ``_BATCHES_PER_WORKER`` items per worker in flight, so memory stays bounded), else in this process."""
    client = _training_client.get()
    if client is None:
        for item in items:
            yield function(item, *shared)
        return
    on_workers = [client.scatter(value, broadcast=True) for value in shared]
    limit = _BATCHES_PER_WORKER * max(1, len(client.scheduler_info()["workers"]))
    in_flight: collections.deque = collections.deque()
    for item in items:
        in_flight.append(client.submit(function, item, *on_workers, pure=False))
        if len(in_flight) >= limit:
            yield in_flight.popleft().result()
    while in_flight:
        yield in_flight.popleft().result()
