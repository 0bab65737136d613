"""Continue a run only where that is safe: the same settings, and a state that loads.

    start = plan_start(folder, cfg, resume="latest", accelerator=accelerator)
    start.state            # the state to resume from (None: a fresh start)
    start.changes          # {"training.epochs": (2, 3)}: settings changed on resume, all allowed
    path, trainer_state = restore_state(folder, accelerator, start.state)

A resumed run continues its optimizer, learning-rate schedule and data order exactly where
the state was saved, so every setting that shapes them must be what the run was started
with. ``plan_start`` compares the config with the run's saved ``config.yaml`` and refuses,
with the list of differences, any change outside ``RESUMABLE``; the allowed ones are
printed and recorded in ``config_history.jsonl`` (glacier/artifacts/run.py).

``restore_state`` loads a state; if one of its files is damaged (a truncated safetensors
file, a garbled optimizer.bin or trainer_state.json), it warns in one line naming the file,
sets the state aside (``state_NNNNNN.damaged``) and falls back to the previous one. All
processes of a launch agree on the state they load.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from glacier import __version__
from glacier.artifacts.model import ModelFolder
from glacier.artifacts.run import CONFIG_FILE, DAMAGED_SUFFIX, TRAINER_STATE_FILE, RunFolder, state_number
from glacier.config import GlacierConfig
from glacier.errors import ConfigError, GlacierError
from glacier.training.provenance import dataset_identity
from glacier.training.signals import any_process

RESUMABLE: dict[str, str] = {
    "name": "names the log folder only",
    "out": "the run folder may have been moved or restored elsewhere",
    "training.epochs": "train longer or shorter (a cosine schedule falls from its rate to the new end)",
    "training.steps": "the step budget: train longer or shorter, like training.epochs",
    "training.max_hours": "the time budget of this session",
    "training.log_every": "how often the loss is shown",
    "training.early_stopping_patience": "when to give up; the counter is kept",
    "data.num_workers": "loader processes; the samples are the same",
    "checkpoints.save_every": "how often a state is saved",
    "checkpoints.keep_last": "how many states are kept",
    "hub.push_to_hub": "where the result goes",
    "hub.private": "where the result goes",
    "model.init_from": "unused on resume: the weights come from the state",
}
"""Settings that may differ on ``--resume`` (and why each is safe). ``data.path`` may too,
when it names the same prepared dataset (the same manifest) at another place."""


@dataclasses.dataclass(frozen=True)
class RunStart:
    """How a ``fit`` begins: from scratch or from ``state``, with which allowed changes."""

    state: Path | None
    changes: dict[str, tuple[Any, Any]]

    def record(self, folder: RunFolder, cfg: GlacierConfig, accelerator) -> None:
        """Say what changed and add this start to config_history.jsonl (main process)."""
        if self.changes:
            changed = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in self.changes.items())
            accelerator.print(f"resuming with changed settings: {changed}")
        if not accelerator.is_main_process:
            return
        folder.append_history(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "resumed_from": self.state.name if self.state is not None else None,
                "changes": {key: list(pair) for key, pair in self.changes.items()},
                "dataset": dataset_identity(cfg.data.path),
                "glacier": __version__,
            }
        )


def plan_start(folder: RunFolder, cfg: GlacierConfig, resume: str | Path | None, accelerator) -> RunStart:
    """The state ``resume`` names, checked against the config it was saved with."""
    state = folder.state_to_resume(resume)
    if resume is None:
        folder.require_fresh()
    elif state is None:
        accelerator.print(f"no saved state in {folder.states} yet: starting from the beginning")
    if state is None:
        return RunStart(None, {})
    return RunStart(state, check_resume(RunFolder(state.parent.parent), cfg, why=f"--resume {resume}"))


def check_resume(run: RunFolder, cfg: GlacierConfig, why: str = "--resume") -> dict[str, tuple[Any, Any]]:
    """The settings of ``cfg`` that differ from those ``run`` was trained with, all allowed;
    a ConfigError listing the differences that are not."""
    saved = _saved_config(run)
    if saved is None:
        return {}
    allowed, refused = {}, {}
    for key, (old, new) in config_differences(saved, cfg).items():
        if _may_change(key, old, new, cfg, run):
            allowed[key] = (old, new)
        else:
            refused[key] = (old, new)
    if refused:
        listed = "; ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in refused.items())
        raise ConfigError(
            f"{run.path}: {why} with settings that differ from the run's {CONFIG_FILE}: {listed}. "
            f"The saved state holds training under the old ones: pass the run's settings again, or "
            f"start a new run with another --out (safe to change on resume: {', '.join(RESUMABLE)})"
        )
    return allowed


def config_differences(saved: dict[str, Any], cfg: GlacierConfig) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (saved, now)}`` for every setting recorded in ``saved`` that ``cfg`` changes."""
    differences = {}
    for key, new in _leaves(cfg.to_dict(), cfg).items():
        node: Any = saved
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is not _MISSING and node != new:  # a key older runs did not record is not compared
            differences[key] = (node, new)
    return differences


_MISSING = object()


def _leaves(values: dict[str, Any], section: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of the config's values, walking its sections (a dict value such as
    ``target_shares`` is one value)."""
    leaves = {}
    for key, value in values.items():
        sub = getattr(section, key, None)
        if isinstance(value, dict) and hasattr(sub, "model_fields"):
            leaves.update(_leaves(value, sub, f"{prefix}{key}."))
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves


def _may_change(key: str, old: Any, new: Any, cfg: GlacierConfig, run: RunFolder) -> bool:
    if key == "data.path":
        recorded = _recorded_dataset(run) or dataset_identity(old)
        return bool(recorded) and recorded.get("manifest_sha256") == dataset_identity(new).get(
            "manifest_sha256"
        )
    return key in RESUMABLE


def _saved_config(run: RunFolder) -> dict[str, Any] | None:
    """The run's config.yaml, else (a run restored from the Hub has none) the training config
    its best model records; None when neither is there."""
    config = run.config()
    if config is not None:
        return config
    if ModelFolder.found_at(run.best):
        return ModelFolder(run.best).meta.training or None
    return None


def _recorded_dataset(run: RunFolder) -> dict[str, Any]:
    """The dataset the run trained on, as its history or its best model recorded it."""
    for entry in reversed(run.history()):
        if entry.get("dataset"):
            return entry["dataset"]
    if ModelFolder.found_at(run.best):
        return (ModelFolder(run.best).meta.training.get("provenance") or {}).get("dataset") or {}
    return {}


# ------------------------------------------------------------------ loading a state
def restore_state(folder: RunFolder, accelerator, path: Path) -> tuple[Path, dict[str, Any]]:
    """Load the state ``path`` (or, if it is damaged, the newest earlier one of its run
    folder); return the state loaded and its trainer state. Every process calls it."""
    owner = RunFolder(path.parent.parent)
    older = [p for p in owner.complete_states() if state_number(p) < state_number(path)]
    candidates = [path, *reversed(older)]
    first_problem = None
    for candidate in candidates:
        problem, trainer_state = None, {}
        try:
            trainer_state = folder.load_state(accelerator, candidate)
        except Exception as exc:  # noqa: BLE001 - any failure to load is named, then the next state tried
            problem = damage_report(candidate, exc)
        if not any_process(accelerator, problem is not None):
            return candidate, trainer_state
        first_problem = first_problem or problem
        ours = candidate.parent == folder.states  # never rename inside another run's folder
        if problem is not None:
            kept = f"; kept as {candidate.name}{DAMAGED_SUFFIX}" if ours else ""
            print(f"warning: {problem}{kept}; trying the state before it", file=sys.stderr, flush=True)
        if accelerator.is_main_process and ours:
            folder.set_aside(candidate)
        accelerator.wait_for_everyone()
    raise GlacierError(
        f"{owner.states}: no saved state can be loaded ({first_problem or 'damaged on another process'}); "
        "start a new run with another --out"
    )


def damage_report(state: Path, exc: Exception) -> str:
    """Which file of ``state`` is damaged and how (``exc``: what loading raised)."""
    for file, problem in _file_checks(state):
        if problem is not None:
            return f"{file}: damaged ({problem})"
    return f"{state}: cannot be loaded ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


def _file_checks(state: Path):
    """``(file, problem or None)`` for each file of a state, cheapest first."""
    trainer = state / TRAINER_STATE_FILE
    try:
        json.loads(trainer.read_text(encoding="utf-8"))
        yield trainer, None
    except (OSError, ValueError) as exc:
        yield trainer, f"{type(exc).__name__}: {exc}"
    for file in sorted(p for p in state.iterdir() if p.is_file() and p != trainer):
        yield file, _file_problem(file)


def _file_problem(file: Path) -> str | None:
    """Why ``file`` cannot be read (safetensors: its header and tensors; torch.save files:
    their zip structure and checksums), or None."""
    if file.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            load_file(str(file))
        except (SafetensorError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None
    if file.suffix in (".bin", ".pkl", ".pt", ".pth"):
        try:
            with zipfile.ZipFile(file) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError) as exc:
            return f"not a readable torch file: {exc}"
        return f"checksum error in {bad}" if bad else None
    return None
