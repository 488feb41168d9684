"""Progress lines a training prints: steps with the time since the start, and passes with a rate and an ETA."""

from __future__ import annotations

import time
from collections.abc import Callable

# Seconds between a pass's progress lines.
_PROGRESS_EVERY = 2.0

__all__ = ["Clock", "Meter"]


class Clock:
    """Each step said with the seconds since the clock started."""

    def __init__(self, progress: Callable[[str], None]):
        self._progress, self._start = progress, time.perf_counter()

    def step(self, message: str) -> None:
        """Say ``message`` with the time elapsed."""
        self._progress(f"[{time.perf_counter() - self._start:6.1f}s] {message}")


class Meter:
    """Progress of one pass: articles done, articles/s and the time left, at most every two seconds."""

    def __init__(self, what: str, progress: Callable[[str], None], total: int | None = None):
        self._what, self._progress, self._total = what, progress, total
        self._done, self._start, self._last = 0, time.perf_counter(), time.perf_counter()

    def advance(self, n: int) -> None:
        """Count ``n`` more articles done; say so when a line is due or the pass is done."""
        self._done += n
        now = time.perf_counter()
        finished = self._total is not None and self._done >= self._total
        if now - self._last < _PROGRESS_EVERY and not finished:
            return
        self._last = now
        rate = self._done / max(now - self._start, 1e-9)
        line = (
            f"{self._what}: {self._done:,}"
            + (f"/{self._total:,}" if self._total else "")
            + f" articles, {rate:,.0f}/s"
        )
        if self._total and rate > 0:
            line += f", ETA {_duration((self._total - self._done) / rate)}"
        self._progress(line)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
