"""Resumable training states: written atomically, rotated, found again.

A state is Accelerate's ``save_state`` folder (model, optimizer, grad scaler, RNG states of
every process) plus ``trainer_state.json`` (epoch, step, best metric, LR schedule, early
stopping counters). Every process writes into a temporary folder; only when all have
finished does the main process add ``trainer_state.json`` and rename the folder to
``state_NNNNNN``. A folder under that name without the JSON never exists, so a kill -9 in
the middle of a write leaves the previous state loadable and ``latest`` skips the debris.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from glacier import atomic
from glacier.errors import GlacierError

STATE_PREFIX = "state_"
TRAINER_STATE = "trainer_state.json"
_STATE_NAME = re.compile(rf"^{STATE_PREFIX}(\d+)$")


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


def state_number(path: Path) -> int | None:
    match = _STATE_NAME.match(path.name)
    return int(match.group(1)) if match else None


def is_complete_state(path: Path) -> bool:
    return path.is_dir() and state_number(path) is not None and (path / TRAINER_STATE).is_file()


class CheckpointManager:
    """Save, rotate and find the resumable states of one run (``RUN/states``)."""

    def __init__(self, states_dir: str | Path, keep_last: int) -> None:
        self.states_dir = Path(states_dir)
        self.keep_last = keep_last

    def complete_states(self) -> list[Path]:
        """Complete states, oldest first."""
        if not self.states_dir.is_dir():
            return []
        states = [p for p in self.states_dir.iterdir() if is_complete_state(p)]
        return sorted(states, key=lambda p: state_number(p))

    def latest(self) -> Path | None:
        states = self.complete_states()
        return states[-1] if states else None

    def save(self, accelerator, state: TrainerState) -> Path:
        """Save Accelerate's state and ``state`` as ``state_<global batch>``; every process calls it."""
        final = self.states_dir / f"{STATE_PREFIX}{state.global_batch:06d}"
        partial = self.states_dir / f".{final.name}.partial"
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            atomic.write_json(partial / TRAINER_STATE, state.to_dict())
            if final.exists():  # the same step saved twice (e.g. a stop right after a save)
                shutil.rmtree(final)
            os.replace(partial, final)
            self._rotate()
        accelerator.wait_for_everyone()
        return final

    def load(self, accelerator, path: str | Path) -> TrainerState:
        """Restore Accelerate's state from ``path`` and return the trainer state saved with it."""
        path = Path(path)
        if not is_complete_state(path):
            raise GlacierError(
                f"{path} is not a complete training state (a folder state_NNNNNN with {TRAINER_STATE}); "
                f"pass --resume latest or one of: {', '.join(p.name for p in self.complete_states()) or 'none'}"
            )
        accelerator.load_state(str(path))
        return TrainerState.from_dict(json.loads((path / TRAINER_STATE).read_text(encoding="utf-8")))

    def _rotate(self) -> None:
        # Disk is scarce on notebooks: keep the newest `keep_last` states, drop debris of
        # interrupted writes.
        for stale in self.complete_states()[: -self.keep_last]:
            shutil.rmtree(stale, ignore_errors=True)
        for debris in self.states_dir.glob(f".{STATE_PREFIX}*.partial"):
            shutil.rmtree(debris, ignore_errors=True)


def resolve_resume(resume: str | Path | None, run_dir: Path, keep_last: int = 1) -> Path | None:
    """``"latest"`` -> the newest complete state of ``run_dir`` (None if there is none yet)."""
    if resume is None:
        return None
    if str(resume) == "latest":
        return CheckpointManager(run_dir / "states", keep_last).latest()
    path = Path(resume)
    if path.is_dir() and not is_complete_state(path) and (path / "states").is_dir():
        # A run folder: its newest state.
        return CheckpointManager(path / "states", keep_last).latest()
    if not is_complete_state(path):
        raise GlacierError(
            f"--resume {resume}: not a complete training state; pass 'latest', a run folder "
            "or a RUN/states/state_NNNNNN folder"
        )
    return path
