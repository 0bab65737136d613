"""A run folder: what one ``fit`` writes, and the reader other code inspects it with.

    RUN/
      config.yaml            the resolved config (glacier.config.save_config)
      metrics.csv            one row per epoch, rewritten whole after each epoch
      logs/                  TensorBoard (Accelerate's trackers)
      states/state_NNNNNN/   a resumable state after NNNNNN batches: Accelerate's
                             ``save_state`` folder plus trainer_state.json
      best/  last/           model folders (glacier/artifacts/model.py)
      oof/                   out-of-fold predictions of best/ on the validation tiles
                             (glacier/artifacts/oof.py; written after a CV fold or member)
      result.json            why the run ended, its best model and metrics (RunResult)
      config_history.jsonl   one line per start or resume: what changed, on which dataset
      .lock                  held (flock) while a process trains here (training/run_lock.py)

    run = RunFolder("runs/ft")
    run.result()           # RunResult, or None while the run has not returned
    run.config()           # the resolved config as a dict
    run.latest_state()     # newest complete state, or None

Reading needs neither torch nor Accelerate. Every file is written atomically (a temporary
name, then a rename). A state is first written by every process into
``states/.state_NNNNNN.partial``; only when all have finished does the main process add
trainer_state.json and rename the folder, so a folder named ``state_NNNNNN`` is always
complete and a kill -9 during a write leaves the previous state loadable.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import io
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from glacier import atomic
from glacier.errors import GlacierError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
RESULT_FILE = "result.json"
LOGS_DIR = "logs"
STATES_DIR = "states"
BEST_DIR = "best"
LAST_DIR = "last"
OOF_DIR = "oof"
STATE_PREFIX = "state_"
TRAINER_STATE_FILE = "trainer_state.json"
HISTORY_FILE = "config_history.jsonl"
LOCK_FILE = ".lock"
DAMAGED_SUFFIX = ".damaged"
"""A state that failed to load is renamed ``state_NNNNNN.damaged``: kept, never resumed from."""
_STARTUP_FILES = (CONFIG_FILE, METRICS_FILE, HISTORY_FILE, LOGS_DIR)
"""What a run writes before it has anything worth keeping (no state, no model, no result)."""
_STATE_NAME = re.compile(rf"^{STATE_PREFIX}(\d+)$")
RECORD_FILES = (CONFIG_FILE, METRICS_FILE, RESULT_FILE, HISTORY_FILE, OOF_DIR)
"""A run's record besides its models, logs and states (files, or folders of files): what a
Hub push of the run sends beside its best model, and a restore brings back (the out-of-fold
predictions too, so that a restored fold joins the calibration without predicting again)."""


@dataclasses.dataclass
class RunResult:
    """What ``fit`` reports, and what ``result.json`` holds: where the run is, its best
    model and why it ended."""

    out: Path
    best_dir: Path | None
    best_metrics: dict[str, Any]
    epochs_run: int
    stopped_reason: str
    """``completed``, ``early_stopping``, ``max_hours`` or a signal name (``SIGTERM``...)."""

    @property
    def finished(self) -> bool:
        """False when the run stopped before its epochs were done and can be resumed."""
        return self.stopped_reason in ("completed", "early_stopping")

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "best_dir": str(self.best_dir) if self.best_dir else None,
            "best_metrics": self.best_metrics,
            "epochs_run": self.epochs_run,
            "stopped_reason": self.stopped_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """The inverse of ``to_dict``."""
        return cls(
            out=Path(data["out"]),
            best_dir=Path(data["best_dir"]) if data.get("best_dir") else None,
            best_metrics=data.get("best_metrics") or {},
            epochs_run=int(data["epochs_run"]),
            stopped_reason=data["stopped_reason"],
        )


def state_number(path: Path) -> int | None:
    """NNNNNN of a ``state_NNNNNN`` folder (the global batch it was saved at), else None."""
    match = _STATE_NAME.match(path.name)
    return int(match.group(1)) if match else None


def is_complete_state(path: Path) -> bool:
    return path.is_dir() and state_number(path) is not None and (path / TRAINER_STATE_FILE).is_file()


class RunFolder:
    """One run folder: its file names, readers and (for ``fit``) writers.

    ``fit`` calls the writers on the main process only, except ``save_state`` and
    ``load_state``, which every process calls.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._metrics: MetricsLog | None = None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def best(self) -> Path:
        return self.path / BEST_DIR

    @property
    def last(self) -> Path:
        return self.path / LAST_DIR

    @property
    def oof(self):
        """The run's out-of-fold predictions (``OofFolder``; ``.exists()`` once written)."""
        from glacier.artifacts.oof import OofFolder

        return OofFolder(self.path / OOF_DIR)

    @property
    def logs(self) -> Path:
        return self.path / LOGS_DIR

    @property
    def states(self) -> Path:
        return self.path / STATES_DIR

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    # ------------------------------------------------------------------ reading
    def result(self) -> RunResult | None:
        """The run's result.json (None while the run has not returned)."""
        path = self.path / RESULT_FILE
        if not path.is_file():
            return None
        return RunResult.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def finished_result(self) -> RunResult | None:
        """The result of a run whose training finished (None if it has not)."""
        result = self.result()
        return result if result is not None and result.finished else None

    def config(self) -> dict[str, Any] | None:
        """The resolved config the run was started with, as a plain dict (None if absent)."""
        import yaml

        path = self.path / CONFIG_FILE
        return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None

    def history(self) -> list[dict[str, Any]]:
        """config_history.jsonl: one dict per start or resume of the run, oldest first."""
        path = self.path / HISTORY_FILE
        if not path.is_file():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def metrics_rows(self) -> list[dict[str, str]]:
        """metrics.csv as rows of strings, one per epoch."""
        return _read_rows(self.path / METRICS_FILE)

    def model_metrics(self, name: str = BEST_DIR) -> dict[str, Any]:
        """The metrics recorded in model folder ``name`` ({} when there is none)."""
        from glacier.artifacts.model import ModelFolder

        folder = ModelFolder(self.path / name)
        return folder.meta.metrics if ModelFolder.found_at(folder.path) else {}

    def complete_states(self) -> list[Path]:
        """Complete states, oldest first."""
        if not self.states.is_dir():
            return []
        return sorted((p for p in self.states.iterdir() if is_complete_state(p)), key=state_number)

    def record_files(self) -> dict[str, Path]:
        """The ``RECORD_FILES`` the run has written, by path relative to the run folder (a
        listed folder: every file under it)."""
        found: dict[str, Path] = {}
        for name in RECORD_FILES:
            path = self.path / name
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            found.update({p.relative_to(self.path).as_posix(): p for p in files if p.is_file()})
        return found

    def latest_state(self) -> Path | None:
        states = self.complete_states()
        return states[-1] if states else None

    def holds_run(self) -> bool:
        """Whether a run was already started here (a result or a saved state)."""
        return (self.path / RESULT_FILE).is_file() or self.latest_state() is not None

    def state_to_resume(self, resume: str | Path | None) -> Path | None:
        """The state ``--resume`` names: ``"latest"`` (this folder's newest, None if there is
        none yet), another run folder (its newest) or a ``states/state_NNNNNN`` folder."""
        if resume is None:
            return None
        if str(resume) == "latest":
            return self.latest_state()
        path = Path(resume)
        if path.is_dir() and not is_complete_state(path) and (path / STATES_DIR).is_dir():
            return RunFolder(path).latest_state()
        if not is_complete_state(path):
            raise GlacierError(
                f"--resume {resume}: not a complete training state; pass 'latest', a run folder "
                "or a RUN/states/state_NNNNNN folder"
            )
        return path

    # ------------------------------------------------------------------ writing
    def require_fresh(self) -> None:
        """Never silently overwrite hours of training: a started run needs --resume or a new --out."""
        if self.holds_run():
            raise GlacierError(
                f"{self.path} already holds a training run; pass --resume latest to continue it, "
                "or choose another --out"
            )

    def write_config(self, cfg) -> None:
        from glacier.config import save_config

        self.path.mkdir(parents=True, exist_ok=True)
        save_config(cfg, self.path / CONFIG_FILE)

    def open_metrics(self, resume_after_epoch: int | None) -> None:
        """Start metrics.csv; a resumed run keeps its rows up to ``resume_after_epoch``."""
        self._metrics = MetricsLog(self.path / METRICS_FILE, resume_after_epoch=resume_after_epoch)

    def append_metrics(self, row: dict[str, object]) -> None:
        """Add one epoch's row to metrics.csv (after ``open_metrics``)."""
        if self._metrics is None:
            raise RuntimeError("RunFolder.open_metrics must come before append_metrics")
        self._metrics.append(row)

    def write_model(
        self, name: str, model, *, normalization, metrics, training, sensor_bands, calibration=None
    ) -> Path:
        """Write model folder ``name`` (``BEST_DIR`` or ``LAST_DIR``) of ``model``, with its
        decision rule (``calibration``: a ``Calibration.to_dict``, None for plain argmax)."""
        from glacier.models import save_model_folder

        return save_model_folder(
            model,
            self.path / name,
            normalization=normalization,
            metrics=metrics,
            training=training,
            sensor_bands=sensor_bands,
            calibration=calibration,
        )

    def copy_model(self, source: str, target: str) -> None:
        """Make model folder ``target`` a copy of ``source`` (e.g. best = last)."""
        with atomic.atomic_dir(self.path / target) as tmp:
            shutil.copytree(self.path / source, tmp, dirs_exist_ok=True)

    def write_result(self, result: RunResult) -> None:
        atomic.write_json(self.path / RESULT_FILE, result.to_dict())

    def append_history(self, entry: dict[str, Any]) -> None:
        """Add one start or resume to config_history.jsonl (rewritten atomically: it is small)."""
        lines = [json.dumps(e, sort_keys=False) for e in [*self.history(), entry]]
        atomic.write_text(self.path / HISTORY_FILE, "\n".join(lines) + "\n")

    def startup_files(self) -> set[str]:
        """Which of the files a run writes before it has anything worth keeping are here."""
        return {name for name in _STARTUP_FILES if (self.path / name).exists()}

    def discard_unstarted(self, existed: set[str]) -> bool:
        """After a failed start: remove what the run wrote if it kept nothing worth keeping (no
        state, model folder or result), so a folder holding only a config is not left behind.
        Files in ``existed`` (there before this start: ``startup_files()``) stay. True if it
        discarded (nothing of this start is left but its lock file)."""
        if self.holds_run() or self.best.is_dir() or self.last.is_dir():
            return False
        for name in set(_STARTUP_FILES) - existed:
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()
        return True

    # ------------------------------------------------------------------ states
    def save_state(self, accelerator, step: int, trainer_state: dict[str, Any], keep_last: int) -> Path:
        """Save Accelerate's state plus ``trainer_state`` as ``state_<step>`` and keep the
        newest ``keep_last`` states; every process calls it."""
        final = self.states / f"{STATE_PREFIX}{step:06d}"
        partial = self.states / f".{final.name}.partial"
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        accelerator.wait_for_everyone()
        with self._disk_full_is_an_error(partial, final):
            accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            with self._disk_full_is_an_error(partial, final):
                atomic.write_json(partial / TRAINER_STATE_FILE, trainer_state)
            if final.exists():  # the same step saved twice (e.g. a stop right after a save)
                shutil.rmtree(final)
            os.replace(partial, final)
            self._rotate_states(keep_last)
        accelerator.wait_for_everyone()
        return final

    @contextlib.contextmanager
    def _disk_full_is_an_error(self, partial: Path, final: Path):
        # A full disk mid-save: drop the partial state, keep the previous ones, say so.
        try:
            yield
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            shutil.rmtree(partial, ignore_errors=True)
            kept = self.latest_state()
            raise GlacierError(
                f"{self.states}: no space left on the device while saving {final.name} "
                f"({exc.filename or exc.strerror}); "
                + (f"the previous state {kept.name} is kept" if kept else "no earlier state was saved")
                + ": free disk space (or lower checkpoints.keep_last), then rerun with --resume latest"
            ) from None

    def load_state(self, accelerator, path: str | Path) -> dict[str, Any]:
        """Restore Accelerate's state from ``path``; return the trainer state saved with it.

        The trainer state is read first: a damaged one fails before any tensor is loaded.
        """
        path = Path(path)
        if not is_complete_state(path):
            raise GlacierError(
                f"{path} is not a complete training state (a folder {STATE_PREFIX}NNNNNN with "
                f"{TRAINER_STATE_FILE}); pass --resume latest or one of: "
                f"{', '.join(p.name for p in self.complete_states()) or 'none'}"
            )
        trainer_state = json.loads((path / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
        if not isinstance(trainer_state, dict):
            raise ValueError(f"{TRAINER_STATE_FILE} holds {type(trainer_state).__name__}, not an object")
        accelerator.load_state(str(path))
        return trainer_state

    def set_aside(self, state: Path) -> Path:
        """Rename a state that cannot be loaded to ``state_NNNNNN.damaged`` (kept for a look,
        never resumed from, never rotated away in place of a good one)."""
        target = state.with_name(state.name + DAMAGED_SUFFIX)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(state, target)
        return target

    def _rotate_states(self, keep_last: int) -> None:
        # Disk is scarce on notebooks: keep the newest `keep_last` states, drop debris of
        # interrupted writes.
        for stale in self.complete_states()[:-keep_last]:
            shutil.rmtree(stale, ignore_errors=True)
        for debris in self.states.glob(f".{STATE_PREFIX}*.partial"):
            shutil.rmtree(debris, ignore_errors=True)


# ------------------------------------------------------------------ metrics.csv
LEADING_COLUMNS = ("epoch", "train_loss")
TRAILING_COLUMNS = ("lr", "seconds", "images_per_s")


class MetricsLog:
    """Rows of ``metrics.csv``, one per epoch, rewritten atomically after each epoch.

    The file is small (one row per epoch), so it is rewritten whole: a resumed run drops rows
    after the epoch it resumes from, and a column that first appears later (validation only
    every few epochs) still gets a header.
    """

    def __init__(self, path: str | Path, resume_after_epoch: int | None = None) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, object]] = []
        if resume_after_epoch is not None:
            self.rows = [row for row in _read_rows(self.path) if int(row["epoch"]) <= resume_after_epoch]

    def append(self, row: dict[str, object]) -> None:
        self.rows.append(dict(row))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.path, self._render())

    def columns(self) -> list[str]:
        seen: list[str] = []
        for row in self.rows:
            seen.extend(k for k in row if k not in seen)
        middle = [c for c in seen if c not in LEADING_COLUMNS + TRAILING_COLUMNS]
        return [*LEADING_COLUMNS, *middle, *TRAILING_COLUMNS]

    def _render(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
        return buffer.getvalue()


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _cell(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return value
