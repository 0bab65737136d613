"""The three training commands as library calls: pretrain, finetune (one fold or all), ensemble.

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
    init_from: str | None = None,
    resume: str | None = None,
    push_to_hub: str | None = None,
) -> RunResult | CVResult:
    """Fine-tune on one fold (``data.fold``) or, with ``all_folds``, every fold plus a CV
    summary. The pushed model is the run's best (with ``all_folds``: the best fold's)."""
    repo_id = push_to_hub or cfg.hub.push_to_hub
    _create_repo(repo_id, cfg)
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
    init_from: str | None = None,
    resume: str | None = None,
    push_to_hub: str | None = None,
) -> EnsembleResult:
    """Train the seed x fold members into one ensemble folder (``folds``: see
    ``train_ensemble``); push it if asked."""
    repo_id = push_to_hub or cfg.hub.push_to_hub
    _create_repo(repo_id, cfg)
    result = train_ensemble(cfg, seeds=seeds, folds=folds, out=out, init_from=init_from, resume=resume)
    if result.finished:
        _push(result.out, repo_id, cfg)
    return result
