"""The three training commands as library calls: pretrain, finetune (one fold, all folds or
all data), ensemble (seeds x folds, or seeds on all data).

Each adds what a command needs around the runs: the Hub repo created at the start (so a bad
repo id or token fails before hours of training), every run pushed to the Hub as it returns
and restored from it when resuming on a machine that lacks it (glacier/hub/sync.py), and the
command's result pushed at the end, from the main process only. The CLI
(glacier/cli/train.py) only parses options and calls one of these.

Where things go in the repo: a single run (pretrain, finetune of one fold) and a command's
result (the best fold of a CV, the ensemble) go to ``hub_revision`` (default main); each
fold of a CV to branch ``finetune-fold_K``, each ensemble member to ``ensemble-<member>``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from glacier.config import GlacierConfig
from glacier.errors import GlacierError
from glacier.training.cv import CVResult, run_cross_validation
from glacier.training.ensemble import EnsembleResult, train_ensemble
from glacier.training.loop import RunResult
from glacier.training.runs import (
    FoldRequest,
    NoHooks,
    PlannedRun,
    RunHooks,
    end_process_group,
    fit_in_turn,
    is_main_process,
)


@contextlib.contextmanager
def _command() -> Iterator[None]:
    """Around a command's runs: the process group, which its runs share, ends with it."""
    try:
        yield
    finally:
        end_process_group()


def _say(message: str) -> None:
    """Print from the main process only (every process runs the sequence)."""
    if is_main_process():
        print(message)


def _create_repo(repo_id: str | None, cfg: GlacierConfig) -> None:
    if repo_id and is_main_process():
        from glacier.hub import create_repo_early

        url = create_repo_early(repo_id, private=cfg.hub.private)
        print(f"Hub repo ready: {url} (each run is pushed when it returns; --resume restores missing runs)")


def _hooks(repo_id: str | None, cfg: GlacierConfig, branch_of: Callable[[PlannedRun], str]) -> RunHooks:
    if not repo_id:
        return NoHooks()
    from glacier.hub.sync import HubSync

    return HubSync(repo_id, branch_of, private=cfg.hub.private, print_fn=_say)


def _push(folder: Path | None, repo_id: str | None, cfg: GlacierConfig, revision: str | None) -> None:
    if repo_id and folder is not None and is_main_process():
        from glacier.hub import push_folder

        url = push_folder(folder, repo_id, private=cfg.hub.private, revision=revision)
        print(f"pushed {folder} -> {url}")


def _fit_one(
    cfg: GlacierConfig, label: str, *, init_from: str | None, resume: str | None, hooks: RunHooks
) -> RunResult:
    """One ``fit`` as a sequence of one run: skipped when finished, restored and pushed by ``hooks``."""
    run = PlannedRun("run", label, cfg, Path(cfg.out))
    results, _ = fit_in_turn(
        [run], init_from=init_from, resume=resume, accelerator_factory=None, print_fn=_say, hooks=hooks
    )
    if run.key not in results:
        raise GlacierError(
            f"{label} not started: the session has no time left for it; continue in a new session"
        )
    return results[run.key]


def pretrain(
    cfg: GlacierConfig,
    *,
    resume: str | None = None,
    push_to_hub: str | None = None,
    hub_revision: str | None = None,
) -> RunResult:
    """Pretraining (e.g. on HKH): one ``fit``; pushed to ``hub_revision`` of the repo if asked."""
    repo_id = push_to_hub or cfg.hub.push_to_hub
    with _command():
        _create_repo(repo_id, cfg)
        hooks = _hooks(repo_id, cfg, lambda run: hub_revision or "main")
        return _fit_one(cfg, "pretraining", init_from=None, resume=resume, hooks=hooks)


def finetune(
    cfg: GlacierConfig,
    *,
    all_folds: bool = False,
    all_data_from: str | Path | None = None,
    keep_length: bool = False,
    init_from: str | None = None,
    resume: str | None = None,
    push_to_hub: str | None = None,
    hub_revision: str | None = None,
) -> RunResult | CVResult:
    """Fine-tune on one fold (``data.fold``), with ``all_folds`` every fold plus a CV summary,
    or with ``all_data_from`` (a CV run) on every tile for the length that CV chose, with its
    calibration (``keep_length``: ``cfg``'s epochs). The model at ``hub_revision`` is the run's
    best (with ``all_folds``: the best fold's)."""
    from glacier.training.all_data import fit_all_data

    repo_id = push_to_hub or cfg.hub.push_to_hub
    with _command():
        _create_repo(repo_id, cfg)
        if all_data_from is not None:
            hooks = _hooks(repo_id, cfg, lambda run: "finetune-all_data")
            result = fit_all_data(
                cfg,
                all_data_from,
                keep_length=keep_length,
                print_fn=_say,
                fit_fn=lambda c: _fit_one(c, "all data", init_from=init_from, resume=resume, hooks=hooks),
            )
            if result.finished:
                _push(result.out, repo_id, cfg, hub_revision)  # with the calibration written after the run
            return result
        if not all_folds:
            hooks = _hooks(repo_id, cfg, lambda run: hub_revision or "main")
            return _fit_one(cfg, f"fold {cfg.data.fold}", init_from=init_from, resume=resume, hooks=hooks)
        hooks = _hooks(repo_id, cfg, lambda run: f"finetune-{run.out.name}")
        cv = run_cross_validation(cfg, init_from=init_from, resume=resume, hooks=hooks, print_fn=_say)
        if cv.finished and repo_id:
            best_fold = max(cv.folds, key=lambda k: cv.folds[k].best_metrics.get("mcc") or float("-inf"))
            _push(cv.folds[best_fold].out, repo_id, cfg, hub_revision)
        return cv


def ensemble(
    cfg: GlacierConfig,
    *,
    seeds: Sequence[int],
    folds: FoldRequest = None,
    out: str | Path,
    all_data_from: str | Path | None = None,
    keep_length: bool = False,
    init_from: str | None = None,
    resume: str | None = None,
    push_to_hub: str | None = None,
    hub_revision: str | None = None,
) -> EnsembleResult:
    """Train the seed x fold members into one ensemble folder (``folds``: see
    ``train_ensemble``), or with ``all_data_from`` (an ensemble trained with all folds) one
    member per seed on every tile, with that ensemble's length and calibration; push it to
    ``hub_revision`` if asked."""
    from glacier.training.all_data import train_all_data_ensemble

    repo_id = push_to_hub or cfg.hub.push_to_hub
    with _command():
        _create_repo(repo_id, cfg)
        hooks = _hooks(repo_id, cfg, lambda run: f"ensemble-{run.out.name}")
        common = {"out": out, "init_from": init_from, "resume": resume, "hooks": hooks, "print_fn": _say}
        if all_data_from is not None:
            result = train_all_data_ensemble(
                cfg, seeds=seeds, from_cv=all_data_from, keep_length=keep_length, **common
            )
        else:
            result = train_ensemble(cfg, seeds=seeds, folds=folds, **common)
        if result.finished:
            _push(result.out, repo_id, cfg, hub_revision)
        return result
