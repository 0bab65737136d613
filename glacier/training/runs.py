"""Several ``fit`` runs in turn (cross-validation folds, ensemble members), resumable, and
the validation folds they use.

With ``resume``, runs that finished are skipped (their ``result.json`` read back, their
settings checked against the config: ``resuming.check_resume``) and the interrupted one
continues from its latest state; a run that stops early (signal, ``max_hours``) ends the
sequence so that the next call picks it up again, and so does a run the recorded notebook
session has no time left for. Each finished run that validated on a fold gets its
out-of-fold predictions (glacier/training/oof.py), once. ``hooks`` (e.g.
``glacier.hub.sync.HubSync``) see each run before it is considered and after it returns:
restore it, push it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from glacier.artifacts.run import RunFolder, RunResult
from glacier.config import GlacierConfig
from glacier.errors import ConfigError
from glacier.training.checkpoints import session_has_room
from glacier.training.loop import fit
from glacier.training.oof import ensure_oof
from glacier.training.resuming import check_resume
from glacier.training.run_lock import refuse_if_in_use

ALL_FOLDS = "all"
FoldRequest = Sequence[int] | Literal["all"] | None
"""Validation folds: a list, ``"all"`` (every fold of the prepared dataset) or None (the
config's ``data.fold``)."""


def resolve_folds(cfg: GlacierConfig, folds: FoldRequest) -> list[int]:
    """The validation folds ``folds`` names, checked against the prepared dataset
    ``data.path`` before anything trains."""
    from glacier.data.prepared import PreparedDataset

    if cfg.data.path is None:
        raise ConfigError("no prepared dataset: pass --data PREP")
    prepared = PreparedDataset.open(cfg.data.path)
    if folds is None:
        folds = [cfg.data.fold]
    elif isinstance(folds, str):
        if folds != ALL_FOLDS:
            raise ConfigError(f"folds {folds!r}: give fold numbers or {ALL_FOLDS!r}")
        folds = None  # every fold of the dataset
    elif not folds:
        raise ConfigError("folds: give at least one fold, e.g. 0,1,2")
    return prepared.validation_folds(folds)


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run of a sequence: its key in the results, its name in messages, config and folder."""

    key: Hashable
    label: str
    """E.g. ``fold 0`` or ``member seed42_fold0``."""
    cfg: GlacierConfig
    out: Path


class RunHooks(Protocol):
    """Called by every process around each run of ``fit_in_turn``."""

    def before_run(self, run: PlannedRun, resume: bool) -> None:
        """Before the run is looked at (``resume``: finished runs will be skipped)."""

    def after_run(self, run: PlannedRun, result: RunResult) -> None:
        """After the run returned, or was skipped as finished (``result`` read back)."""


class NoHooks:
    """Nothing around the runs."""

    def before_run(self, run: PlannedRun, resume: bool) -> None:
        pass

    def after_run(self, run: PlannedRun, result: RunResult) -> None:
        pass


def fit_in_turn(
    runs: Sequence[PlannedRun],
    *,
    init_from: str | Path | None,
    resume: str | Path | None,
    accelerator_factory: Callable[[], Any] | None,
    print_fn: Callable[[str], None],
    hooks: RunHooks = NoHooks(),  # stateless: one default for every call
) -> tuple[dict[Hashable, RunResult], bool]:
    """Fit ``runs`` one after the other; return their results by key and whether all finished.

    ``resume`` (any value, e.g. ``"latest"``) skips finished runs and resumes the others from
    their latest state (a single run: from the state ``resume`` names). ``accelerator_factory`` makes each run's Accelerator (default: ``fit``
    creates one). A run is not started when the recorded notebook session has no time left
    for it (``session_has_room``).
    """
    results: dict[Hashable, RunResult] = {}
    for i, run in enumerate(runs):
        hooks.before_run(run, resume is not None)
        done = RunFolder(run.out).finished_result() if resume is not None else None
        if done is not None:
            refuse_if_in_use(RunFolder(run.out))
        # Kept only if trained with these settings: a CV must not mix data or models.
        changes = (
            check_resume(RunFolder(run.out), run.cfg, why=f"--resume {resume} ({run.label})") if done else {}
        )
        if done is not None and not _length_changed(changes, done):
            print_fn(f"{run.label}: already finished ({run.out}), skipped")
            results[run.key] = done
            ensure_oof(run.out, run.cfg, print_fn)  # only if a session ended before it was written
            hooks.after_run(run, done)
            continue
        if not session_has_room(run.cfg, [RunFolder(r.out) for r in runs[: i + 1]]):
            print_fn(
                f"{run.label}: not started, the session has no time left for it; continue in a new session"
            )
            return results, False
        print_fn(f"{run.label} ({i + 1} of {len(runs)}) -> {run.out}")
        result = fit(
            run.cfg,
            accelerator=accelerator_factory() if accelerator_factory else None,
            init_from=init_from,
            # A named state (not "latest") makes sense for a sequence of one run only.
            resume=resume if len(runs) == 1 or resume is None else "latest",
            out=run.out,
        )
        results[run.key] = result
        if result.finished:
            ensure_oof(run.out, run.cfg, print_fn)  # before the push: the run's record holds them
        hooks.after_run(run, result)
        if not result.finished:
            print_fn(f"{run.label} stopped ({result.stopped_reason}); continue with --resume latest")
            return results, False
    return results, True


def _length_changed(changes: dict[str, tuple[Any, Any]], done: RunResult) -> bool:
    """Whether a completed run is asked for another length (``--epochs``, ``training.steps``)
    and so resumes rather than being skipped. (An unset ``training.epochs`` is not a change:
    the run resolved it from its step budget.)"""
    if done.stopped_reason != "completed":
        return False
    return changes.get("training.epochs", (None, None))[1] is not None or "training.steps" in changes


def is_main_process() -> bool:
    """Whether this is the process that writes shared files (the only one, outside a launch)."""
    return process_state().is_main_process


def process_state():
    """Accelerate's state of this process, set up as ``Accelerator()`` would set it up.

    A bare ``PartialState()`` ignores ``ACCELERATE_USE_CPU``; made before any Accelerator,
    it turns a 2-process CPU launch into two single processes. This one honours it.
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def end_process_group() -> None:
    """End the process group this process's runs shared, if one was started.

    What ``PartialState.destroy_process_group()`` does in accelerate 1.x, written out because
    accelerate 0.30 (the lowest release glacier supports) lacks that method. A process started
    by ``notebook_launcher``'s fork keeps its group: the launcher owns it.
    """
    import torch.distributed as dist

    if not process_state().fork_launched and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
