"""Stopping cleanly: SIGTERM/SIGINT and a wall-time budget become flags the loop polls.

A signal handler only sets a flag; the loop notices it at a step boundary (``StopPoll``),
saves a resumable state and returns. Work never stops in the middle of an optimizer step or a
checkpoint write, and a notebook's session limit (``training.max_hours``, counted from the
session's start where one is recorded: glacier/session.py) ends a run with a state on disk
instead of a killed kernel.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

from glacier.session import Session


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

    The next epoch is expected to take as long as the slowest one recorded so far (``fit``
    records the time from one epoch's end to the next, so the model and state writes
    count too), so the run stops with a state saved before the budget runs out.

    The budget is ``max_hours`` from now, or, in a recorded notebook session
    (``glacier.session``), ``max_hours`` from the session's start and never past its end
    minus its margin: a session's sixth run gets what the first five left.
    """

    def __init__(
        self,
        max_hours: float | None,
        clock=time.monotonic,
        session: Session | None = None,
        wall_clock=time.time,
    ) -> None:
        self._clock = clock
        self.session = session
        start = clock()
        if session is not None:
            end = session.training_end(max_hours)
            self.seconds_at_start = None if end is None else end - wall_clock()
        else:
            self.seconds_at_start = None if max_hours is None else max_hours * 3600.0
        self._end = None if self.seconds_at_start is None else start + self.seconds_at_start
        self._longest_epoch = 0.0

    def record_epoch(self, seconds: float) -> None:
        self._longest_epoch = max(self._longest_epoch, seconds)

    @property
    def remaining(self) -> float | None:
        """Seconds left (negative once passed); None without a budget."""
        return None if self._end is None else self._end - self._clock()

    def next_epoch_fits(self) -> bool:
        remaining = self.remaining
        return remaining is None or self._longest_epoch <= remaining


def any_process(accelerator, flag: bool) -> bool:
    """``flag`` OR-ed over every process: a collective that every process must reach."""
    if accelerator.num_processes == 1:
        return flag
    import torch

    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item() > 0)


class StopPoll:
    """Has any process been asked to stop? One answer that all processes share.

    A signal may reach one process only, so under several processes the answer is an
    all-reduce. ``after_step`` asks only every ``every`` optimizer steps: signals are rare, a
    stop a few steps late costs nothing, and a sync on every step does. Every process
    counts the same optimizer steps (Accelerate gives each the same number of batches), so
    all of them reach the all-reduce at the same step; a process skipping it would leave
    the others waiting forever. One process asks at every step: there it is free.
    """

    def __init__(self, accelerator, request: StopRequest, every: int) -> None:
        self.accelerator = accelerator
        self.request = request
        self.every = max(1, every)
        self._steps = 0

    @property
    def reason(self) -> str:
        return self.request.reason or "signal"

    def after_step(self) -> bool:
        """Call after every optimizer step; True when the run should stop now."""
        self._steps += 1
        if self.accelerator.num_processes > 1 and self._steps % self.every:
            return False
        return self.now()

    def now(self) -> bool:
        """Ask now (a collective: call it where every process calls it, e.g. an epoch end)."""
        return any_process(self.accelerator, self.request.requested)
