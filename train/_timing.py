"""Timing helper shared by the benchmarks."""

import time
from collections.abc import Callable
from typing import Any


def seconds(action: Callable[[], Any]) -> float:
    """Wall-clock seconds ``action()`` takes."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
