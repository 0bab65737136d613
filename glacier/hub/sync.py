"""Push as you go, restore what is missing: the runs of a sequence kept on the Hub.

    sync = HubSync("me/glacier", branch_of=lambda run: f"finetune-{run.out.name}")
    fit_in_turn(runs, ..., hooks=sync)      # glacier.training.runs: each fold, each member

Every run has a branch of the repo to itself. When a run returns, the main process pushes
it there in one commit: its best model at the top (so the branch is a model repo), the
run's record (``RunFolder.record_files``: config.yaml, metrics.csv, result.json, and
whatever else the run folder lists) and, for a run that stopped before its end (a signal,
the session's time), its newest training state under ``states/`` (the card then says the
branch holds training states). States older than what was pushed are deleted in the same
commit, so a finished run's branch holds none.

Before a run is looked at, with ``--resume``, a run this machine does not hold is restored
from its branch into its run folder: best model, record (``result.json`` with this
machine's paths, so a finished or early-stopped run is skipped), state. A run folder that
already holds a run is never replaced: the local run is at least as far as what it pushed.

A push that fails does not stop training: it is reported and tried again after the run's
next return (``hub_sync.json`` in the run folder records what its branch holds). A restore
that fails stops the command: training on without it would start over runs the Hub has.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glacier import atomic
from glacier.artifacts.model import ModelFolder
from glacier.artifacts.run import BEST_DIR, RESULT_FILE, RunFolder, RunResult
from glacier.errors import HubError
from glacier.hub.auth import hub_errors
from glacier.hub.pull import download_snapshot, link_or_copy
from glacier.hub.push import push_folder

SYNC_FILE = "hub_sync.json"
"""In a run folder: the repo, branch and progress that the branch holds (never pushed)."""
MODEL_FILES = (ModelFolder.CONFIG, ModelFolder.WEIGHTS, ModelFolder.BOUNDARY_HEAD)
NOT_RESTORED = (ModelFolder.CARD, ".gitattributes")
RESTORE_HINT = "run the command again when the Hub can be reached (or unset the Hub repo to train without it)"


class HubSync:
    """``fit_in_turn`` hooks (glacier.training.runs.RunHooks): restore each run from, and
    push it to, its own branch ``branch_of(run)`` of ``repo_id``; every process calls them,
    the main process does the work."""

    def __init__(
        self,
        repo_id: str,
        branch_of: Callable[[Any], str],
        *,
        private: bool = True,
        print_fn: Callable[[str], None] = print,
    ) -> None:
        self.repo_id = repo_id
        self.branch_of = branch_of
        self.private = private
        self.print = print_fn

    def before_run(self, run, resume: bool) -> None:
        """Restore ``run`` from the Hub if resuming and this machine does not hold it."""
        from accelerate.utils import broadcast_object_list

        from glacier.training.runs import process_state

        if not resume:
            return  # a fresh run was asked for: nothing may be put in its folder
        failure = None
        if process_state().is_main_process:
            try:
                self._restore(run)
            except HubError as exc:
                failure = str(exc)
        # Every process waits for the restore, and stops with it: one left training alone
        # would wait for the others forever.
        failure = broadcast_object_list([failure])[0]
        if failure:
            raise HubError(failure)

    def after_run(self, run, result: RunResult) -> None:
        """Push ``run`` unless its branch already holds this result (main process only)."""
        from glacier.training.runs import is_main_process

        if not is_main_process():
            return
        branch = self.branch_of(run)
        folder = RunFolder(run.out)
        progress = _progress(folder, result)
        if read_sync_record(folder) == _sync_record(self.repo_id, branch, progress):
            return
        try:
            push_run(folder, self.repo_id, branch, result, private=self.private, label=run.label)
        except HubError as exc:
            self.print(f"{run.label}: not pushed ({exc}); it is pushed again when the run next returns")
            return
        _write_sync_record(folder, self.repo_id, branch, progress)
        what = "with its training state" if progress["state"] else "finished"
        self.print(f"{run.label}: pushed to {self.repo_id}@{branch} ({what})")

    def _restore(self, run) -> None:
        folder = RunFolder(run.out)
        if folder.holds_run():
            return
        branch = self.branch_of(run)
        result = restore_run(self.repo_id, branch, folder.path)
        if result is None:
            self.print(f"{run.label}: nothing to restore from {self.repo_id}@{branch}")
            return
        state = RunFolder(folder.path).latest_state()
        how = f"{result.stopped_reason} after {result.epochs_run} epoch(s)"
        if not result.finished and state is not None:
            how += f"; continues from {state.name}"
        self.print(f"{run.label}: restored from {self.repo_id}@{branch} ({how})")


def push_run(
    folder: RunFolder, repo_id: str, branch: str, result: RunResult, *, private: bool, label: str
) -> str:
    """Push run ``folder`` to ``branch``: its best model and record, plus its newest state
    if ``result`` is unfinished; older states on the branch are deleted. The commit URL."""
    unfinished = not result.finished
    state = folder.latest_state() if unfinished else None
    message = f"{label}: {result.stopped_reason} after {result.epochs_run} epochs" + (
        f", state {state.name}" if state is not None else ""
    )
    return push_folder(
        folder.path,
        repo_id,
        private=private,
        revision=branch,
        include_states="latest" if unfinished else False,
        prune_states=True,
        commit_message=message,
    )


def restore_run(repo_id: str, branch: str, run_dir: Path) -> RunResult | None:
    """Rebuild run folder ``run_dir`` from ``branch`` of ``repo_id``; its result, or None
    when the branch does not exist (or holds no run)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RevisionNotFoundError

    with hub_errors(repo_id, f"restore branch {branch!r} of", retry_hint=RESTORE_HINT):
        try:
            on_hub = HfApi().list_repo_files(repo_id, revision=branch)
        except RevisionNotFoundError:
            return None
    if RESULT_FILE not in on_hub:
        return None
    snapshot = download_snapshot(repo_id, revision=branch)
    with atomic.atomic_dir(run_dir) as tmp:
        for path in sorted(p for p in snapshot.rglob("*") if p.is_file()):
            name = path.relative_to(snapshot).as_posix()
            if name in NOT_RESTORED:
                continue
            target = tmp / BEST_DIR / name if name in MODEL_FILES else tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(path.resolve(), target)
        result = _rebased_result(tmp, run_dir)
        best = tmp / BEST_DIR
        if ModelFolder.found_at(best):
            atomic.write_text(best / ModelFolder.CARD, ModelFolder(best).card())
        _write_sync_record(RunFolder(tmp), repo_id, branch, _progress(RunFolder(tmp), result))
    return result


def _rebased_result(tmp: Path, run_dir: Path) -> RunResult:
    """result.json with this machine's paths (it names the folders of the machine that pushed it)."""
    pushed = RunFolder(tmp).result()
    best = run_dir / BEST_DIR if (tmp / BEST_DIR).is_dir() and pushed.best_dir is not None else None
    result = RunResult(run_dir, best, pushed.best_metrics, pushed.epochs_run, pushed.stopped_reason)
    RunFolder(tmp).write_result(result)
    return result


def _progress(folder: RunFolder, result: RunResult) -> dict[str, Any]:
    state = folder.latest_state() if not result.finished else None
    return {
        "stopped_reason": result.stopped_reason,
        "epochs_run": result.epochs_run,
        "state": state.name if state is not None else None,
    }


def _sync_record(repo_id: str, branch: str, progress: dict[str, Any]) -> dict[str, Any]:
    return {"repo_id": repo_id, "branch": branch, **progress}


def read_sync_record(folder: RunFolder) -> dict[str, Any] | None:
    """What the run's branch holds, as last pushed or restored (None: not known)."""
    try:
        return json.loads((folder.path / SYNC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_sync_record(folder: RunFolder, repo_id: str, branch: str, progress: dict[str, Any]) -> None:
    atomic.write_json(folder.path / SYNC_FILE, _sync_record(repo_id, branch, progress))
