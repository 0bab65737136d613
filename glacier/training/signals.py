"""Stopping cleanly: SIGTERM/SIGINT and a wall-time budget become flags the loop polls.

A signal handler only sets a flag; the loop notices it at the next step boundary, saves a
resumable state and returns. Work never stops in the middle of an optimizer step or a
checkpoint write, and a notebook's session limit (``training.max_hours``) ends a run with a
state on disk instead of a killed kernel.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType


class StopRequest:
    """Install SIGTERM/SIGINT handlers that record the request instead of raising.

    Use as a context manager; the previous handlers come back on exit. A second Ctrl-C while
    a stop is already pending raises KeyboardInterrupt, so a stuck run can still be killed.
    Outside the main thread (where Python cannot install handlers) it only offers ``request``.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.request(signal.Signals(signum).name)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class Deadline:
    """A wall-time budget: is there time for one more epoch?

    The next epoch is expected to take as long as the slowest epoch so far (plus the time a
    checkpoint takes), so the run stops with a state saved before the budget runs out.
    """

    def __init__(self, max_hours: float | None, clock=time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._budget = None if max_hours is None else max_hours * 3600.0
        self._longest_epoch = 0.0

    def record_epoch(self, seconds: float) -> None:
        self._longest_epoch = max(self._longest_epoch, seconds)

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    def next_epoch_fits(self) -> bool:
        if self._budget is None:
            return True
        return self.elapsed + self._longest_epoch <= self._budget

    def expired(self) -> bool:
        return self._budget is not None and self.elapsed >= self._budget
