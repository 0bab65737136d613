"""Several ``fit`` runs in turn (cross-validation folds, ensemble members), resumable.

With ``resume``, runs that finished are skipped (their ``result.json`` read back) and the
interrupted one continues from its latest state; a run that stops early (signal,
``max_hours``) ends the sequence so that the next call picks it up again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from glacier.config import GlacierConfig
from glacier.training.loop import RESULT_FILE, RunResult, fit


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run of a sequence: its key in the results, its name in messages, config and folder."""

    key: Hashable
    label: str
    """E.g. ``fold 0`` or ``member seed42_fold0``."""
    cfg: GlacierConfig
    out: Path


def finished_result(folder: Path) -> RunResult | None:
    """The RunResult of a run folder whose training finished (None otherwise)."""
    path = folder / RESULT_FILE
    if not path.is_file():
        return None
    result = RunResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    return result if result.finished else None


def fit_in_turn(
    runs: Sequence[PlannedRun],
    *,
    init_from: str | Path | None,
    resume: str | Path | None,
    accelerator_factory: Callable[[], Any] | None,
    print_fn: Callable[[str], None],
) -> tuple[dict[Hashable, RunResult], bool]:
    """Fit ``runs`` one after the other; return their results by key and whether all finished.

    ``resume`` (any value, e.g. ``"latest"``) skips finished runs and resumes the others from
    their latest state. ``accelerator_factory`` makes each run's Accelerator (default: ``fit``
    creates one).
    """
    results: dict[Hashable, RunResult] = {}
    for i, run in enumerate(runs):
        done = finished_result(run.out) if resume is not None else None
        if done is not None:
            print_fn(f"{run.label}: already finished ({run.out}), skipped")
            results[run.key] = done
            continue
        print_fn(f"{run.label} ({i + 1} of {len(runs)}) -> {run.out}")
        result = fit(
            run.cfg,
            accelerator=accelerator_factory() if accelerator_factory else None,
            init_from=init_from,
            resume="latest" if resume is not None else None,
            out=run.out,
        )
        results[run.key] = result
        if not result.finished:
            print_fn(f"{run.label} stopped ({result.stopped_reason}); continue with --resume latest")
            return results, False
    return results, True


def is_main_process() -> bool:
    """Whether this is the process that writes shared files (the only one, outside a launch)."""
    from accelerate import PartialState

    return PartialState().is_main_process
