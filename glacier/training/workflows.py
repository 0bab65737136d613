"""The three training commands as library calls: pretrain, finetune (one fold, all folds or
all data), ensemble (seeds x folds, or seeds on all data).

Each adds what a command needs around ``fit``: the Hub repo created at the start (so a bad
repo id or token fails before hours of training) and the push at the end, from the main
process only. The CLI (glacier/cli/train.py) only parses options and calls one of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from glacier.config import GlacierConfig
from glacier.training.cv import CVResult, run_cross_validation
from glacier.training.ensemble import EnsembleResult, train_ensemble
from glacier.training.loop import RunResult, fit
from glacier.training.runs import FoldRequest, is_main_process


def _create_repo(repo_id: str | None, cfg: GlacierConfig) -> None:
    if repo_id and is_main_process():
        from glacier.hub import create_repo_early

        url = create_repo_early(repo_id, private=cfg.hub.private)
        print(f"Hub repo ready: {url} (the best model is pushed when training ends)")


def _push(folder: Path | None, repo_id: str | None, cfg: GlacierConfig) -> None:
    if repo_id and folder is not None and is_main_process():
        from glacier.hub import push_folder

        url = push_folder(folder, repo_id, private=cfg.hub.private)
        print(f"pushed {folder} -> {url}")


def pretrain(cfg: GlacierConfig, *, resume: str | None = None, push_to_hub: str | None = None) -> RunResult:
    """Pretraining (e.g. on HKH): one ``fit``; pushes the run's best model if asked."""
    repo_id = push_to_hub or cfg.hub.push_to_hub
    _create_repo(repo_id, cfg)
    result = fit(cfg, resume=resume)
    if result.finished:
        _push(result.out, repo_id, cfg)
    return result


def finetune(
    cfg: GlacierConfig,
    *,
    all_folds: bool = False,
    all_data_from: str | Path | None = None,
    keep_length: bool = False,
    init_from: str | None = None,
    resume: str | None = None,
    push_to_hub: str | None = None,
) -> RunResult | CVResult:
    """Fine-tune on one fold (``data.fold``), with ``all_folds`` every fold plus a CV summary,
    or with ``all_data_from`` (a CV run) on every tile for the length that CV chose, with its
    calibration (``keep_length``: ``cfg``'s epochs). The pushed model is the run's best (with
    ``all_folds``: the best fold's)."""
    from glacier.training.all_data import fit_all_data

    repo_id = push_to_hub or cfg.hub.push_to_hub
    _create_repo(repo_id, cfg)
    if all_data_from is not None:
        result = fit_all_data(cfg, all_data_from, keep_length=keep_length, init_from=init_from, resume=resume)
        if result.finished:
            _push(result.out, repo_id, cfg)
        return result
    if not all_folds:
        result = fit(cfg, init_from=init_from, resume=resume)
        if result.finished:
            _push(result.out, repo_id, cfg)
        return result
    cv = run_cross_validation(cfg, init_from=init_from, resume=resume)
    if cv.finished and repo_id:
        best_fold = max(cv.folds, key=lambda k: cv.folds[k].best_metrics.get("mcc") or float("-inf"))
        _push(cv.folds[best_fold].out, repo_id, cfg)
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
) -> EnsembleResult:
    """Train the seed x fold members into one ensemble folder (``folds``: see
    ``train_ensemble``), or with ``all_data_from`` (an ensemble trained with all folds) one
    member per seed on every tile, with that ensemble's length and calibration; push it if asked."""
    from glacier.training.all_data import train_all_data_ensemble

    repo_id = push_to_hub or cfg.hub.push_to_hub
    _create_repo(repo_id, cfg)
    if all_data_from is not None:
        result = train_all_data_ensemble(
            cfg,
            seeds=seeds,
            from_cv=all_data_from,
            out=out,
            keep_length=keep_length,
            init_from=init_from,
            resume=resume,
        )
    else:
        result = train_ensemble(cfg, seeds=seeds, folds=folds, out=out, init_from=init_from, resume=resume)
    if result.finished:
        _push(result.out, repo_id, cfg)
    return result
