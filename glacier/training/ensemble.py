"""Train an ensemble: one ``fit`` per (seed, fold) member, then one ensemble folder.

    ENS/runs/seed42_fold0/ ...     each member's run folder (resumable)
    ENS/members/seed42_fold0/      the member's best model (copied from its run)
    ENS/ensemble.json, README.md   see glacier/artifacts/ensemble.py; ensemble.json also holds
                                   the members' pooled out-of-fold figures, the combination
                                   chosen on them and its calibration (glacier/decisions/fitting.py)

Members differ only in the config's seed and validation fold. With ``resume``, finished
members are skipped and an interrupted one continues from its latest state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from glacier.artifacts import EnsembleFolder, EnsembleMember
from glacier.artifacts.run import RunResult
from glacier.config import GlacierConfig
from glacier.errors import ConfigError
from glacier.training.provenance import portable_config
from glacier.training.runs import (
    FoldRequest,
    NoHooks,
    PlannedRun,
    RunHooks,
    fit_in_turn,
    is_main_process,
    resolve_folds,
)

RUNS_DIR = "runs"


@dataclasses.dataclass
class EnsembleResult:
    out: Path
    members: dict[str, RunResult]
    finished: bool


def member_name(seed: int, fold: int | None) -> str:
    return f"seed{seed}_{'all' if fold is None else f'fold{fold}'}"


def member_config(cfg: GlacierConfig, seed: int, fold: int | None) -> GlacierConfig:
    """The config of one member: its seed, and its validation fold (None: train on every fold)."""
    overrides: dict[str, Any] = {"training.seed": seed, "name": f"{cfg.name}_{member_name(seed, fold)}"}
    if fold is None:
        overrides["data.use_all_for_training"] = True
    else:
        overrides["data.fold"] = fold
    return cfg.updated(**overrides)


def train_ensemble(
    cfg: GlacierConfig,
    *,
    seeds: Sequence[int],
    folds: FoldRequest = None,
    out: str | Path,
    init_from: str | Path | None = None,
    resume: str | Path | None = None,
    accelerator_factory: Callable[[], Any] | None = None,
    print_fn: Callable[[str], None] = print,
    extra: dict[str, Any] | None = None,
    hooks: RunHooks = NoHooks(),  # e.g. glacier.hub.sync.HubSync: restore and push each run
    fit_decisions: bool = True,
) -> EnsembleResult:
    """Train ``seeds`` x ``folds`` members and write the ensemble folder ``out``.

    ``folds``: validation folds, ``"all"``, or None for the config's ``data.fold``. With
    ``data.use_all_for_training`` each seed trains on every tile instead, one member per
    seed. The ensemble folder is written once every member has finished; members with
    validation folds get their combination and calibration fitted on their out-of-fold
    predictions (``fit_decisions=False`` skips that fit, for a caller that pools these
    members with others and fits on all of them); ``extra`` adds keys to ensemble.json (the
    all-data ensemble's calibration).
    """
    from accelerate import PartialState

    if not seeds:
        raise ConfigError("--seeds: give at least one seed, e.g. --seeds 42,123,456")
    out = Path(out)
    if cfg.data.use_all_for_training:
        plan: list[tuple[int, int | None]] = [(s, None) for s in seeds]
    else:
        plan = [(s, k) for s in seeds for k in resolve_folds(cfg, folds)]
    planned = []
    for seed, fold in plan:
        name = member_name(seed, fold)
        planned.append(
            PlannedRun(name, f"member {name}", member_config(cfg, seed, fold), out / RUNS_DIR / name)
        )
    results, finished = fit_in_turn(
        planned,
        init_from=init_from,
        resume=resume,
        accelerator_factory=accelerator_factory,
        print_fn=print_fn,
        hooks=hooks,
    )
    if not finished:
        return EnsembleResult(out, results, False)

    if is_main_process():
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
        decisions = {}
        if fit_decisions and not cfg.data.use_all_for_training:
            from glacier.decisions.fitting import MemberRun, decide_ensemble

            runs = [MemberRun(m.name, m.seed, m.fold, results[m.name].out) for m in members]
            decisions = decide_ensemble(runs, print_fn=print_fn)
        training = {"training": {"config": portable_config(cfg), "seeds": list(seeds)}}
        EnsembleFolder.write(out, members, extra={**training, **decisions, **(extra or {})})
        print_fn(f"ensemble of {len(members)} members -> {out}")
    PartialState().wait_for_everyone()
    return EnsembleResult(out, results, True)
