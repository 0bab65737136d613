"""Train an ensemble: one ``fit`` per (seed, fold) member, then one ensemble folder.

    ENS/runs/seed42_fold0/ ...     each member's run folder (resumable)
    ENS/members/seed42_fold0/      the member's best model (copied from its run)
    ENS/ensemble.json, README.md   see glacier/ensemble_folder.py

Members differ only in the config's seed and validation fold. With ``resume``, finished
members are skipped and an interrupted one continues from its latest state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from glacier.config import GlacierConfig
from glacier.ensemble_folder import EnsembleMember, write_ensemble
from glacier.errors import ConfigError
from glacier.training.cv import finished_result
from glacier.training.loop import RunResult, fit

RUNS_DIR = "runs"


@dataclasses.dataclass
class EnsembleResult:
    out: Path
    members: dict[str, RunResult]
    finished: bool


def member_name(seed: int, fold: int | None) -> str:
    return f"seed{seed}_{'all' if fold is None else f'fold{fold}'}"


def train_ensemble(
    cfg: GlacierConfig,
    *,
    seeds: Sequence[int],
    folds: Sequence[int] | None,
    out: str | Path,
    init_from: str | Path | None = None,
    resume: str | Path | None = None,
    accelerator_factory: Callable[[], Any] | None = None,
    print_fn: Callable[[str], None] = print,
) -> EnsembleResult:
    """Train ``seeds`` x ``folds`` members and write the ensemble folder ``out``.

    ``folds`` None (or ``data.use_all_for_training``) trains each seed on every fold, one
    member per seed. The ensemble folder is written once every member has finished.
    """
    from accelerate import PartialState

    if not seeds:
        raise ConfigError("--seeds: give at least one seed, e.g. --seeds 42,123,456")
    out = Path(out)
    plan = (
        [(s, None) for s in seeds]
        if folds is None or cfg.data.use_all_for_training
        else [(s, k) for s in seeds for k in folds]
    )
    results: dict[str, RunResult] = {}
    for i, (seed, fold) in enumerate(plan):
        name = member_name(seed, fold)
        run_dir = out / RUNS_DIR / name
        done = finished_result(run_dir) if resume is not None else None
        if done is not None:
            print_fn(f"member {name}: already trained, skipped")
            results[name] = done
            continue
        print_fn(f"member {i + 1} of {len(plan)}: {name} -> {run_dir}")
        overrides: dict[str, Any] = {"training.seed": seed, "name": f"{cfg.name}_{name}"}
        if fold is None:
            overrides["data.use_all_for_training"] = True
        else:
            overrides["data.fold"] = fold
        result = fit(
            cfg.updated(**overrides),
            accelerator=accelerator_factory() if accelerator_factory else None,
            init_from=init_from,
            resume="latest" if resume is not None else None,
            out=run_dir,
        )
        results[name] = result
        if not result.finished:
            print_fn(f"member {name} stopped ({result.stopped_reason}); continue with --resume latest")
            return EnsembleResult(out, results, False)

    if PartialState().is_main_process:
        members = [
            EnsembleMember(
                name=name,
                model_dir=result.best_dir,
                seed=seed,
                fold=fold,
                metrics=result.best_metrics,
            )
            for (seed, fold), (name, result) in zip(plan, results.items(), strict=True)
        ]
        write_ensemble(out, members, extra={"training": {"config": cfg.to_dict(), "seeds": list(seeds)}})
        print_fn(f"ensemble of {len(members)} members -> {out}")
    PartialState().wait_for_everyone()
    return EnsembleResult(out, results, True)
