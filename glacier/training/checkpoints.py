"""The checkpoint and stop rules of ``fit``: when a run keeps its best model, saves a
resumable state and stops, and where a resumed run picks up.

``StopPolicy`` is the one object the loop asks: once after every step, once after every
epoch. ``TrainerState`` is what it keeps, and what a state saves besides Accelerate's own
(``trainer_state.json``; the folders themselves: glacier/artifacts/run.py).

The rules:

- ``best/`` is written when the validation MCC beats every earlier one (``checkpoints.save_best``),
  or, with ``checkpoints.select=last``, once at the end from the last model (``loop._finish``).
- A state is saved every ``checkpoints.save_every`` epochs, after the last epoch, and
  whenever the run stops early; ``checkpoints.keep_last`` of them are kept.
- The run stops after ``training.early_stopping_patience`` validations without a better MCC;
  on SIGTERM/SIGINT at the next optimizer step, mid-epoch (the epoch's loss sums are saved
  too, so the resumed epoch reports the same loss); after an epoch when the next would
  not fit in ``training.max_hours`` (from the notebook session's start where one is
  recorded, and never past its end: glacier/session.py).
- A non-finite loss stops the run with an error (``training.nonfinite_loss=stop``) or skips
  the step, at most ``MAX_SKIPPED_STEPS`` times.

Every answer is the same on every process: a signal may reach only one of them and clocks
differ, so the flags are all-reduced where every process asks.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Literal

from glacier.config import GlacierConfig
from glacier.errors import GlacierError
from glacier.session import Session, clock_text, current_session
from glacier.training.history import EpochSums
from glacier.training.resuming import restore_state
from glacier.training.signals import Deadline, StopPoll, StopRequest, any_process

MAX_SKIPPED_STEPS = 10


@dataclasses.dataclass
class TrainerState:
    """What the loop needs besides Accelerate's state to continue exactly where it stopped."""

    epoch: int = 0
    """Completed epochs."""
    batch_in_epoch: int = 0
    """Batches already trained in epoch ``epoch`` (0 at an epoch boundary)."""
    global_batch: int = 0
    best_mcc: float | None = None
    best_epoch: int | None = None
    validations_without_improvement: int = 0
    skipped_steps: int = 0
    schedule: dict[str, Any] = dataclasses.field(default_factory=dict)
    partial_epoch: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Running sums of an unfinished epoch (a state saved on SIGTERM mid-epoch)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass(frozen=True)
class EpochEnd:
    """What ``fit`` does after an epoch, in this order."""

    keep_best: bool
    """Write ``best/``: the validation MCC improved (and ``checkpoints.select`` is ``best``)."""
    save_state: bool
    stop: str | None
    """Why the run stops now (``early_stopping``, a signal name, ``max_hours``); None: go on."""


class StopPolicy:
    """The checkpoint and stop rules (module docstring), asked once per step and per epoch.

    ``fit`` uses it like this:

        policy = StopPolicy(cfg, accelerator)
        policy.resume(run_folder, state_path, schedule)     # a resumed run only
        with policy:                                        # SIGTERM/SIGINT now set a flag
            for epoch in policy.epochs():
                sums = policy.epoch_sums()
                for batch in policy.batches(loader, epoch):
                    ...                                     # one training step
                    if policy.after_step(out): break
                if policy.stopped_mid_epoch: policy.save_state(...); break
                ...                                         # validate, record
                end = policy.end_epoch(epoch, val_mcc)  # then best/, a state, a stop
    """

    def __init__(
        self,
        cfg: GlacierConfig,
        accelerator,
        clock=time.monotonic,
        session: Session | None | Literal["environment"] = "environment",
    ) -> None:
        self.cfg = cfg
        self.accelerator = accelerator
        self.state = TrainerState()
        self.resumed_epoch: int | None = None  # the epoch a resumed run continues after
        self.stopped_reason = "completed"
        self.stopped_mid_epoch = False
        self._clock = clock
        self._request = StopRequest()
        self._poll = StopPoll(accelerator, self._request, every=cfg.training.log_every)
        # The budget counts from here (the run is built, its first epoch is about to start),
        # or from the start of the notebook session GLACIER_SESSION_FILE records.
        if session == "environment":
            session = current_session()
        self._deadline = Deadline(cfg.training.max_hours, clock=clock, session=session)
        if session is not None:
            self._announce_session_deadline()
        self._last_epoch_end = clock()
        self._epoch_length = 0

    def _announce_session_deadline(self) -> None:
        left = self._deadline.seconds_at_start
        if left is None:
            return
        self.accelerator.print(
            f"session started {clock_text(self._deadline.session.started_at)}: this run stops by "
            f"{clock_text(time.time() + left)} ({max(left, 0.0) / 3600:.2f} h left; training.max_hours "
            f"counts from the session start, the session's end keeps its margin)"
        )

    def __enter__(self) -> StopPolicy:
        self._request.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._request.__exit__(*exc)

    # ------------------------------------------------------------ where a run (re)starts
    def resume(self, folder, path: str | Path, schedule) -> None:
        """Restore Accelerate's state, this policy's TrainerState and the LR schedule from
        the state ``path`` of run folder ``folder`` (an earlier one if it is damaged:
        ``resuming.restore_state``); every process calls it."""
        path, trainer_state = restore_state(folder, self.accelerator, Path(path))
        self.state = TrainerState.from_dict(trainer_state)
        schedule.load_state_dict(self.state.schedule)
        self.resumed_epoch = self.state.epoch
        self.accelerator.print(
            f"resumed from {path} (epoch {self.state.epoch}, batch {self.state.batch_in_epoch})"
        )

    def epochs(self) -> range:
        return range(self.state.epoch, self.cfg.training.epochs)

    def epoch_sums(self) -> EpochSums:
        """The epoch's loss sums, continued from a state saved mid-epoch."""
        return EpochSums(self.accelerator.device, self.state.partial_epoch or None)

    def batches(self, loader, epoch: int):
        """The epoch's batches: those not yet trained, in a run resumed mid-epoch."""
        self._epoch_length = len(loader)
        batches = loader
        if self.state.batch_in_epoch:
            batches = self.accelerator.skip_first_batches(loader, self.state.batch_in_epoch)
        # Accelerate's loader sets the sampler's epoch to its own iteration count on every
        # pass, which restarts at 0 in a resumed run: give it the true epoch.
        batches.set_epoch(epoch)
        return batches

    # ------------------------------------------------------------ once per step
    def after_step(self, out) -> bool:
        """Count the batch, apply the non-finite loss rule, and at optimizer steps ask whether
        any process was told to stop. True: leave the epoch now."""
        state = self.state
        state.batch_in_epoch += 1
        state.global_batch += 1
        if not out.finite:
            self._skip_nonfinite(out)
        if not (self.accelerator.sync_gradients and self._poll.after_step()):
            return False
        self.stopped_reason = self._poll.reason
        self.stopped_mid_epoch = state.batch_in_epoch < self._epoch_length
        return True

    def _skip_nonfinite(self, out) -> None:
        state = self.state
        where = f"epoch {state.epoch + 1}, batch {state.batch_in_epoch}"
        if self.cfg.training.nonfinite_loss == "stop":
            raise GlacierError(
                f"non-finite loss ({out.loss.item()}) at {where}: try a lower learning rate "
                "(--lr), full precision (accelerate launch --mixed_precision no) or "
                "--set training.nonfinite_loss=skip"
            )
        state.skipped_steps += 1
        self.accelerator.print(f"skipped a step with a non-finite loss at {where} ({state.skipped_steps})")
        if state.skipped_steps >= MAX_SKIPPED_STEPS:
            raise GlacierError(
                f"{state.skipped_steps} steps had a non-finite loss (last at {where}): "
                "lower the learning rate (--lr) or train in full precision"
            )

    # ------------------------------------------------------------ once per epoch
    def end_epoch(self, epoch: int, val_mcc: float | None) -> EpochEnd:
        """Record the finished epoch (``val_mcc`` None: not validated) and say what to do."""
        state = self.state
        state.epoch, state.batch_in_epoch, state.partial_epoch = epoch + 1, 0, {}
        improved = val_mcc is not None and self._improved(val_mcc, epoch)
        now = self._clock()
        self._deadline.record_epoch(now - self._last_epoch_end)
        self._last_epoch_end = now
        stop = self._why_stop(epoch)
        if stop is not None:
            self.stopped_reason = stop
        save_every, epochs = self.cfg.checkpoints.save_every, self.cfg.training.epochs
        save = stop is not None or (epoch + 1) % save_every == 0 or epoch + 1 == epochs
        checkpoints = self.cfg.checkpoints
        keep_best = improved and checkpoints.save_best and checkpoints.select == "best"
        return EpochEnd(keep_best, save, stop)

    def _improved(self, mcc: float, epoch: int) -> bool:
        state = self.state
        if state.best_mcc is None or mcc > state.best_mcc:
            state.best_mcc, state.best_epoch = mcc, epoch + 1
            state.validations_without_improvement = 0
            return True
        state.validations_without_improvement += 1
        return False

    def _why_stop(self, epoch: int) -> str | None:
        tcfg, accelerator = self.cfg.training, self.accelerator
        patience = tcfg.early_stopping_patience
        if patience is not None and self.state.validations_without_improvement >= patience:
            accelerator.print(f"early stopping: no better validation MCC for {patience} validations")
            return "early_stopping"
        if self._poll.now():
            return self._poll.reason
        # Each process reads its own clock: agree, or one would stop while the others go on.
        if epoch + 1 < tcfg.epochs and any_process(accelerator, not self._deadline.next_epoch_fits()):
            budget = "the session's time" if self._deadline.session else "training.max_hours"
            accelerator.print(f"{budget}: the next epoch would not fit; stopping after epoch {epoch + 1}")
            return "max_hours"
        return None

    # ------------------------------------------------------------ the state to resume from
    def save_state(self, folder, schedule, sums: EpochSums | None = None) -> Path:
        """Save a resumable state into run folder ``folder``: Accelerate's, the schedule and
        this policy's counters, plus ``sums`` when stopped mid-epoch; every process calls it."""
        state = self.state
        state.schedule = schedule.state_dict()
        state.partial_epoch = {}
        if self.stopped_mid_epoch:
            self.accelerator.print(
                f"stop requested ({self.stopped_reason}): saving a state mid-epoch {state.epoch + 1}"
            )
            state.partial_epoch = sums.to_dict()
        return folder.save_state(
            self.accelerator, state.global_batch, state.to_dict(), self.cfg.checkpoints.keep_last
        )


# ------------------------------------------------------------ before a run of a sequence
def session_has_room(cfg: GlacierConfig, folders, session: Session | None = None) -> bool:
    """Whether a run of ``cfg`` may start in the recorded notebook session (always, without
    one): the time left must hold an epoch as long as the longest in ``folders`` (run
    folders: this run's own, if resumed, and the earlier runs of its sequence).

    The main process decides for all: their clocks differ, and a run that one process
    skipped and another started would leave the second waiting forever.
    """
    from accelerate.utils import broadcast_object_list

    from glacier.training.runs import process_state

    session = current_session() if session is None else session
    if session is None:
        return True  # every process reads the same (absent) record: no need to agree
    answer = [True]
    if process_state().is_main_process:
        left = Deadline(cfg.training.max_hours, session=session).remaining
        answer = [left is None or left > max((_longest_epoch(f) for f in folders), default=0.0)]
    return bool(broadcast_object_list(answer)[0])


def _longest_epoch(folder) -> float:
    seconds = [row.get("seconds") for row in folder.metrics_rows()]
    return max((float(s) for s in seconds if s), default=0.0)
