"""Measuring what a model costs and scores: wall time, peak memory, artifact size and load time, label scores."""

from __future__ import annotations

import ctypes
import gc
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sklearn.metrics import accuracy_score

from newsclf.train.evaluation.metrics import macro_f1, task_labels


def seconds(action: Callable[[], Any]) -> float:
    """Wall-clock seconds ``action()`` takes."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def label_scores(y_true: Sequence[str], y_pred: Sequence[str], known: Sequence[str]) -> dict[str, float]:
    """Macro-F1 over the task labels (``known``, the labels the model was fitted on, then the unseen
    true ones; see :mod:`newsclf.train.evaluation.metrics`) and accuracy of predicted labels."""
    return {
        "macro_f1": macro_f1(y_true, y_pred, task_labels(known, y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
    }


def artifact_cost(save: Callable[[Path], Any], load: Callable[[Path], Any], repeats: int) -> tuple[int, float]:
    """Bytes on disk of what ``save(folder)`` writes, and the median seconds of ``load(folder)`` over ``repeats``."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save(folder)
        size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        return size, statistics.median(seconds(lambda: load(folder)) for _ in range(repeats))


def peak_rss_increase(action: Callable[[], Any], interval: float = 0.005) -> tuple[Any, int]:
    """Run ``action``; return its result and the peak resident memory above the level before it.

    Sampled from /proc for this process and its fit workers, so native buffers (liblinear,
    fastText) count too; freed memory is handed back to the OS first so earlier work does not
    hide this one's peak.
    """
    _stop_idle_workers()
    gc.collect()
    _trim_heap()
    baseline = peak = _rss()
    done = threading.Event()

    def watch():
        nonlocal peak
        while not done.wait(interval):
            peak = max(peak, _rss())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = action()
    finally:
        done.set()
        watcher.join()
    return result, max(peak, _rss()) - baseline


def _rss() -> int:
    """Resident memory of this process and its child processes (fit workers), in bytes."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            total = int(handle.read().split()[1])
    except OSError:  # not Linux: fall back to the process high-water mark
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for pid in _child_pids():
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
                total += int(handle.read().split()[1])
        except OSError:  # the child has just exited
            continue
    return total * os.sysconf("SC_PAGE_SIZE")


def _stop_idle_workers() -> None:
    # joblib keeps fit workers alive between fits; left running, their memory would sit in the
    # baseline rather than in the peak of the fit that needs them.
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def _child_pids() -> list[str]:
    pids = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += (task / "children").read_text(encoding="ascii").split()
        except OSError:
            continue
    return pids


def _trim_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
