"""The one training loop: pretraining, each cross-validation fold and each ensemble member.

    from glacier.config import load_config
    from glacier.training import fit
    result = fit(load_config("tiny", data="prepared/competition", epochs=2))

    accelerate launch -m glacier finetune --config competition_finetune --fold 0

``fit`` follows accelerate's ``complete_cv_example``: build everything from the config,
``prepare`` once, then per step ``accumulate`` / ``backward`` / ``clip_grad_norm_``, and per
validation ``gather_for_metrics`` on per-tile confusion matrices (so the tiles Accelerate
duplicates to even out the last batch are not counted twice). The loop does not know which
phase it runs: the config says which data, bands, weights to start from and where to write.
``fit`` reads in that order: ``setup`` (build, ``prepare``, resume), then per epoch
``train_epoch`` (``train_step`` per batch), ``end_epoch`` (validate, record, keep the best),
``should_stop`` and a state; last ``finish`` (``last/``, ``best/``, ``result.json``).

Normalisation: a run standardises its inputs with its *own training dataset's* statistics
(from the prepared manifest, restricted to the selected bands) and saves them in every model
folder it writes. A fine-tuned model therefore carries the statistics it was trained with,
and prediction never has to guess which dataset a model's inputs looked like. Weights
transferred from a pretrained model adapt to the new statistics during fine-tuning, like
they adapt to the new sensor.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from glacier import atomic
from glacier.config import GlacierConfig, save_config
from glacier.domain import IGNORE_INDEX, resolve_bands
from glacier.errors import ConfigError, GlacierError
from glacier.training.checkpoints import CheckpointManager, TrainerState, resolve_resume
from glacier.training.history import MetricsLog, epoch_line
from glacier.training.initial_weights import (
    freeze_unused_parameters,
    init_report_line,
    init_weights,
)
from glacier.training.provenance import provenance
from glacier.training.signals import Deadline, StopPoll, StopRequest, any_process
from glacier.training.step import StepOutput, all_finite, pad_to_stride, train_step, validate

MAX_SKIPPED_STEPS = 10
RESULT_FILE = "result.json"


@dataclasses.dataclass
class RunResult:
    """What ``fit`` reports: where the run is, its best model and why it ended."""

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
        """The inverse of ``to_dict`` (a run folder's ``result.json``)."""
        return cls(
            out=Path(data["out"]),
            best_dir=Path(data["best_dir"]) if data.get("best_dir") else None,
            best_metrics=data.get("best_metrics") or {},
            epochs_run=int(data["epochs_run"]),
            stopped_reason=data["stopped_reason"],
        )


# ------------------------------------------------------------- accelerator, run folder
def _default_accelerator(cfg: GlacierConfig, run_dir: Path):
    from accelerate import Accelerator

    # Mixed precision comes from `accelerate launch --mixed_precision` / the accelerate
    # config, not from our config: fp16 on T4s, bf16 where supported, none on CPU.
    return Accelerator(
        gradient_accumulation_steps=cfg.training.grad_accum_steps,
        log_with="tensorboard",
        project_dir=str(run_dir / "logs"),
    )


def _select_bands(cfg: GlacierConfig, prepared) -> tuple[str, ...]:
    available = tuple(prepared.bands)
    if cfg.data.bands is None:
        return available
    chosen = resolve_bands(cfg.data.bands)
    missing = [b for b in chosen if b not in available]
    if missing:
        raise ConfigError(
            f"data.bands: {missing} not in the prepared dataset {cfg.data.path} (bands {list(available)})"
        )
    return chosen


def _check_fresh_run_dir(run_dir: Path) -> None:
    # Never silently overwrite hours of training: an existing run needs --resume or a new --out.
    if (run_dir / RESULT_FILE).is_file() or CheckpointManager(run_dir / "states", 1).latest():
        raise GlacierError(
            f"{run_dir} already holds a training run; pass --resume latest to continue it, "
            "or choose another --out"
        )


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}."))
        elif isinstance(value, (int, float, str, bool)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


# --------------------------------------------------------------------- epoch records
class _EpochSums:
    """Running sums of the training loss (and its parts) over one epoch, on the device."""

    def __init__(self, device, saved: dict[str, Any] | None = None) -> None:
        self.device = device
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.parts: dict[str, torch.Tensor] = {}
        self.images = 0
        self.batches = 0
        if saved:
            self.loss += saved["loss"]
            self.parts = {
                k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in saved["parts"].items()
            }
            self.images, self.batches = int(saved["images"]), int(saved["batches"])

    def add(self, out: StepOutput, images: int) -> None:
        self.loss += out.loss.double()
        for key, value in out.parts.items():
            if key not in self.parts:
                self.parts[key] = torch.zeros((), dtype=torch.float64, device=self.device)
            self.parts[key] += value.double()
        self.images += images
        self.batches += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": float(self.loss.item()),
            "parts": {k: float(v.item()) for k, v in self.parts.items()},
            "images": self.images,
            "batches": self.batches,
        }

    def reduced(self, accelerator) -> dict[str, float]:
        """Mean loss (and parts) per batch over all processes, and the total image count."""
        keys = sorted(self.parts)
        local = torch.stack(
            [self.loss, *(self.parts[k] for k in keys)]
            + [torch.tensor(float(self.batches), dtype=torch.float64, device=self.device)]
            + [torch.tensor(float(self.images), dtype=torch.float64, device=self.device)]
        )
        total = accelerator.reduce(local, reduction="sum") if accelerator.num_processes > 1 else local
        values = total.tolist()
        batches = max(values[-2], 1.0)
        result = {"train_loss": values[0] / batches}
        result.update({f"train_{k}": v / batches for k, v in zip(keys, values[1:-2], strict=True)})
        result["images"] = values[-1]
        return result


def _validation_row(metrics: dict[str, Any]) -> dict[str, Any]:
    row = {"val_loss": metrics["loss"], "val_mcc": metrics["mcc"]}
    for name, value in metrics["iou"].items():
        row[f"iou_{name}"] = float("nan") if value is None else value
    row["miou"] = float("nan") if metrics["miou"] is None else metrics["miou"]
    return row


def _model_metrics(metrics: dict[str, Any], epoch: int) -> dict[str, Any]:
    keep = ("mcc", "iou", "f1", "miou", "mean_f1", "pixel_accuracy", "loss", "tiles")
    return {**{k: metrics[k] for k in keep if k in metrics}, "epoch": epoch}


# ----------------------------------------------------------------------------- setup
@dataclasses.dataclass
class _Data:
    """The prepared dataset as one run sees it: the chosen bands, their statistics, the split."""

    prepared: Any
    bands: tuple[str, ...]
    stats: Any
    sensor_bands: list[str] | None
    num_classes: int
    train_idx: Any
    val_idx: Any


@dataclasses.dataclass
class _Run:
    """What ``setup`` builds for one ``fit``, prepared once; the epoch functions share it."""

    cfg: GlacierConfig
    run_dir: Path
    accelerator: Any
    own_accelerator: bool
    data: _Data
    init_report: dict[str, Any] | None
    model: Any
    stride: int
    optimizer: Any
    loss_fn: Any
    train_loader: Any
    val_loader: Any
    epoch_aware: list
    """Dataset and sampler, whose ``set_epoch`` Accelerate's wrappers do not reach."""
    schedule: Any
    checkpoints: CheckpointManager
    state: TrainerState
    history: MetricsLog
    deadline: Deadline
    last_metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The latest validation's metrics."""

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def save_model(self, folder: Path, metrics: dict[str, Any], epochs_run: int) -> None:
        """A model folder with this run's statistics and provenance (main process only)."""
        from glacier.models import save_model_folder

        if self.is_main:
            save_model_folder(
                self.accelerator.unwrap_model(self.model),
                folder,
                normalization=self.data.stats,
                metrics=metrics,
                training=provenance(
                    self.cfg, self.data.prepared, self.data.bands, self.init_report, epochs_run
                ),
                sensor_bands=self.data.sensor_bands,
            )

    def save_state(self, partial: _EpochSums | None = None) -> None:
        """A resumable state; every process calls it. ``partial``: an unfinished epoch's sums."""
        self.state.schedule = self.schedule.state_dict()
        self.state.partial_epoch = partial.to_dict() if partial is not None else {}
        self.checkpoints.save(self.accelerator, self.state)


def setup(
    cfg: GlacierConfig,
    *,
    accelerator=None,
    init_from: str | Path | None = None,
    resume: str | Path | None = None,
    out: str | Path | None = None,
) -> _Run:
    """Build everything ``fit`` needs from the config (accelerator, data, model, optimizer,
    loss, loaders), ``prepare`` it once, then the schedule, the resumed state and the run folder."""
    from accelerate.utils import set_seed

    from glacier.losses import CombinedLoss
    from glacier.training.builders import LrSchedule, build_loaders, build_optimizer

    cfg, run_dir, init_from = _resolve_config(cfg, out, init_from)
    own_accelerator = accelerator is None
    if own_accelerator:
        accelerator = _default_accelerator(cfg, run_dir)
    checkpoints = CheckpointManager(run_dir / "states", cfg.checkpoints.keep_last)
    resume_path = _resume_path(resume, run_dir, cfg, accelerator)

    set_seed(cfg.training.seed)
    data = _load_data(cfg)
    model, init_report = _build_model(cfg, data, None if resume_path else init_from, accelerator)
    optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], cfg.training.optimizer)
    train_loader, val_loader, epoch_aware = build_loaders(
        cfg, data.prepared, data.bands, data.stats, data.train_idx, data.val_idx
    )
    loss_fn = CombinedLoss(
        **cfg.training.loss.model_dump(), num_classes=data.num_classes, ignore_index=IGNORE_INDEX
    )
    stride = model.stride  # before `prepare`: a DDP wrapper does not have it

    model, optimizer, train_loader, val_loader = _prepare(
        accelerator, model, optimizer, train_loader, val_loader
    )
    loss_fn = loss_fn.to(accelerator.device)
    steps_per_epoch = math.ceil(len(train_loader) / accelerator.gradient_accumulation_steps)
    schedule = LrSchedule(optimizer, cfg.training.scheduler, cfg.training.epochs, steps_per_epoch)
    state = TrainerState()
    if resume_path is not None:
        state = checkpoints.load(accelerator, resume_path)
        schedule.load_state_dict(state.schedule)
        accelerator.print(f"resumed from {resume_path} (epoch {state.epoch}, batch {state.batch_in_epoch})")

    history = _start_run_folder(
        cfg, run_dir, accelerator, data, init_report, resumed_epoch=state.epoch if resume_path else None
    )
    return _Run(
        cfg=cfg, run_dir=run_dir, accelerator=accelerator, own_accelerator=own_accelerator,
        data=data, init_report=init_report, model=model, stride=stride, optimizer=optimizer,
        loss_fn=loss_fn, train_loader=train_loader, val_loader=val_loader, epoch_aware=epoch_aware,
        schedule=schedule, checkpoints=checkpoints, state=state, history=history,
        deadline=Deadline(cfg.training.max_hours),
    )  # fmt: skip


def _resolve_config(
    cfg: GlacierConfig, out: str | Path | None, init_from: str | Path | None
) -> tuple[GlacierConfig, Path, str | Path | None]:
    """The config as this run uses it (``out`` and ``init_from`` written in), its folder and
    the model to start from."""
    run_dir = Path(out if out is not None else cfg.out)
    init_from = init_from if init_from is not None else cfg.model.init_from
    cfg = cfg.updated(
        **{"out": str(run_dir), "model.init_from": None if init_from is None else str(init_from)}
    )
    if cfg.data.path is None:
        raise ConfigError("no prepared dataset: pass --data PREP (a `glacier preprocess` output folder)")
    return cfg, run_dir, init_from


def _resume_path(resume: str | Path | None, run_dir: Path, cfg: GlacierConfig, accelerator) -> Path | None:
    resume_path = resolve_resume(resume, run_dir, cfg.checkpoints.keep_last)
    if resume is None:
        _check_fresh_run_dir(run_dir)
    elif resume_path is None:
        accelerator.print(f"no saved state in {run_dir / 'states'} yet: starting from the beginning")
    return resume_path


def _load_data(cfg: GlacierConfig) -> _Data:
    from glacier.data.prepared import PreparedDataset

    prepared = PreparedDataset.open(cfg.data.path)
    bands = _select_bands(cfg, prepared)
    sensor_all = prepared.manifest.get("sensor_bands")
    train_idx, val_idx = prepared.train_val_indices(
        cfg.data.fold, use_all=cfg.data.use_all_for_training, min_valid_fraction=cfg.data.min_valid_fraction
    )
    if len(train_idx) == 0:
        raise GlacierError(f"{cfg.data.path}: no training tiles for fold {cfg.data.fold} with these settings")
    return _Data(
        prepared,
        bands,
        stats=prepared.stats.select(bands),
        sensor_bands=[sensor_all[list(prepared.bands).index(b)] for b in bands] if sensor_all else None,
        num_classes=len(prepared.manifest.get("classes", ())) or 4,
        train_idx=train_idx,
        val_idx=val_idx,
    )


def _build_model(cfg: GlacierConfig, data: _Data, init_from: str | Path | None, accelerator):
    """The model, initialised from ``init_from`` if given; returns it and the transfer report."""
    from glacier.models import build_model

    model = build_model(cfg.model, data.bands, num_classes=data.num_classes)
    init_report = init_weights(model, init_from, data.bands) if init_from is not None else None
    # Always (not only under DDP), so that a state saved by N processes loads in 1.
    unused = freeze_unused_parameters(model, len(data.bands))
    if unused:
        accelerator.print(f"{len(unused)} parameter tensors are never used by the forward pass: frozen")
    return model, init_report


def _prepare(accelerator, model, optimizer, train_loader, val_loader):
    if val_loader is None:
        model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    else:
        model, optimizer, train_loader, val_loader = accelerator.prepare(
            model, optimizer, train_loader, val_loader
        )
    return model, optimizer, train_loader, val_loader


def _start_run_folder(
    cfg: GlacierConfig, run_dir: Path, accelerator, data: _Data, init_report, resumed_epoch: int | None
) -> MetricsLog:
    """Write config.yaml, open metrics.csv (kept up to a resumed epoch) and the trackers, and
    say what is being trained."""
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    history = MetricsLog(run_dir / "metrics.csv", resume_after_epoch=resumed_epoch)
    if accelerator.log_with:
        accelerator.init_trackers(cfg.name, config=_flat(cfg.to_dict()))
    accelerator.print(
        f"training {cfg.name}: {len(data.train_idx)} training tiles, {len(data.val_idx)} validation tiles, "
        f"bands {list(data.bands)}, {accelerator.num_processes} process(es) on {accelerator.device}"
        + (f", mixed precision {accelerator.mixed_precision}" if accelerator.mixed_precision != "no" else "")
    )
    if init_report is not None:
        accelerator.print(init_report_line(init_report))
    return history


# ------------------------------------------------------------------------------- fit
def fit(
    cfg: GlacierConfig,
    *,
    accelerator=None,
    init_from: str | Path | None = None,
    resume: str | Path | None = None,
    out: str | Path | None = None,
) -> RunResult:
    """Train the model ``cfg`` describes; write the run folder (docs/ARCHITECTURE.md).

    ``init_from`` (else ``cfg.model.init_from``) starts from a model folder or Hub id, bands
    matched by name. ``resume`` is ``"latest"``, a run folder or a ``states/state_NNNNNN``
    folder: training continues exactly where that state was saved. ``out`` overrides
    ``cfg.out``. Every process of an ``accelerate launch`` calls ``fit``; only the main
    process writes files. Returns the same RunResult on every process.
    """
    run = setup(cfg, accelerator=accelerator, init_from=init_from, resume=resume, out=out)
    stopped_reason = "completed"
    with StopRequest() as request:
        stop = StopPoll(run.accelerator, request, every=run.cfg.training.log_every)
        for epoch in range(run.state.epoch, run.cfg.training.epochs):
            started = time.monotonic()
            sums = train_epoch(run, epoch, stop)
            if stop.now() and run.state.batch_in_epoch < len(run.train_loader):
                stopped_reason = stop.reason
                run.accelerator.print(
                    f"stop requested ({stopped_reason}): saving a state mid-epoch {epoch + 1}"
                )
                run.save_state(sums)
                break
            end_epoch(run, epoch, sums, started)
            stopped_reason = should_stop(run, epoch, stop)
            if stopped_reason != "completed" or _state_due(run.cfg, epoch):
                run.save_state()
            if stopped_reason != "completed":
                break
    return finish(run, stopped_reason)


def train_epoch(run: _Run, epoch: int, stop: StopPoll) -> _EpochSums:
    """Train one epoch (the rest of it, in a resumed run) and return its loss sums; leaves
    early, at an optimizer-step boundary, when ``stop`` says so."""
    accelerator, state, tcfg = run.accelerator, run.state, run.cfg.training
    for obj in run.epoch_aware:
        obj.set_epoch(epoch)
    if hasattr(run.loss_fn, "set_epoch"):
        run.loss_fn.set_epoch(epoch)
    sums = _EpochSums(accelerator.device, state.partial_epoch or None)
    batches = run.train_loader
    if state.batch_in_epoch:
        batches = accelerator.skip_first_batches(run.train_loader, state.batch_in_epoch)
    # Accelerate's loader sets the sampler's epoch to its own iteration count on every
    # pass, which restarts at 0 in a resumed run: give it the true epoch.
    batches.set_epoch(epoch)
    bar = _progress_bar(run, epoch)
    run.model.train()
    for batch in batches:
        out = train_step(accelerator, run.model, batch, run.loss_fn, run.optimizer, tcfg.max_grad_norm)
        state.batch_in_epoch += 1
        state.global_batch += 1
        bar.update()
        if out.finite:
            sums.add(out, len(batch["image"]))
        else:
            _skip_nonfinite_step(run, epoch, out)
        if accelerator.sync_gradients:
            run.schedule.step_batch()
            if state.batch_in_epoch % tcfg.log_every == 0 and run.is_main:
                bar.set_postfix(loss=f"{out.loss.item():.4f}", lr=f"{run.schedule.lr:.2e}", refresh=False)
            if stop.after_step():
                break
    bar.close()
    return sums


def _progress_bar(run: _Run, epoch: int):
    from tqdm.auto import tqdm

    return tqdm(
        total=len(run.train_loader),
        initial=run.state.batch_in_epoch,
        desc=f"epoch {epoch + 1}/{run.cfg.training.epochs}",
        disable=not run.is_main,
        mininterval=1.0,
        dynamic_ncols=True,
        leave=False,
    )


def _skip_nonfinite_step(run: _Run, epoch: int, out: StepOutput) -> None:
    """A step with a non-finite loss: stop the run (``training.nonfinite_loss=stop``) or count
    it as skipped, up to MAX_SKIPPED_STEPS."""
    state = run.state
    where = f"epoch {epoch + 1}, batch {state.batch_in_epoch}"
    if run.cfg.training.nonfinite_loss == "stop":
        raise GlacierError(
            f"non-finite loss ({out.loss.item()}) at {where}: try a lower learning rate "
            "(--lr), full precision (accelerate launch --mixed_precision no) or "
            "--set training.nonfinite_loss=skip"
        )
    state.skipped_steps += 1
    run.accelerator.print(f"skipped a step with a non-finite loss at {where} ({state.skipped_steps})")
    if state.skipped_steps >= MAX_SKIPPED_STEPS:
        raise GlacierError(
            f"{state.skipped_steps} steps had a non-finite loss (last at {where}): "
            "lower the learning rate (--lr) or train in full precision"
        )


def end_epoch(run: _Run, epoch: int, sums: _EpochSums, started: float) -> None:
    """Validate (when due), record the epoch's row, step the schedule, keep the best model."""
    accelerator, state = run.accelerator, run.state
    train_seconds = time.monotonic() - started
    row: dict[str, Any] = {"epoch": epoch + 1, "lr": run.schedule.lr}
    train = sums.reduced(accelerator)
    images = train.pop("images")
    row.update(train)
    mcc = None
    if _validation_due(run, epoch):
        run.last_metrics = validate(
            accelerator, run.model, run.val_loader, run.loss_fn, run.stride, run.data.num_classes
        )
        mcc = run.last_metrics["mcc"]
        row.update(_validation_row(run.last_metrics))
    row["seconds"] = time.monotonic() - started
    row["images_per_s"] = images / max(train_seconds, 1e-9)
    run.schedule.step_epoch(mcc)
    state.epoch, state.batch_in_epoch, state.partial_epoch = epoch + 1, 0, {}
    if run.is_main:
        run.history.append(row)
        accelerator.print(epoch_line(row, run.cfg.training.epochs))
    accelerator.log({k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
    if mcc is not None:
        _update_best(run, mcc, epoch)
    accelerator.wait_for_everyone()
    run.deadline.record_epoch(time.monotonic() - started)


def _validation_due(run: _Run, epoch: int) -> bool:
    tcfg = run.cfg.training
    return run.val_loader is not None and ((epoch + 1) % tcfg.val_every == 0 or epoch + 1 == tcfg.epochs)


def _update_best(run: _Run, mcc: float, epoch: int) -> None:
    """Count validations without improvement; save ``best/`` when the MCC improved."""
    state = run.state
    if state.best_mcc is None or mcc > state.best_mcc:
        state.best_mcc, state.best_epoch = mcc, epoch + 1
        state.validations_without_improvement = 0
        if run.cfg.checkpoints.save_best:
            run.save_model(run.run_dir / "best", _model_metrics(run.last_metrics, epoch + 1), epoch + 1)
    else:
        state.validations_without_improvement += 1


def should_stop(run: _Run, epoch: int, stop: StopPoll) -> str:
    """Why the run stops after ``epoch`` (``early_stopping``, a signal name, ``max_hours``),
    or ``completed`` to go on. The same answer on every process."""
    tcfg, accelerator = run.cfg.training, run.accelerator
    patience = tcfg.early_stopping_patience
    if patience is not None and run.state.validations_without_improvement >= patience:
        accelerator.print(f"early stopping: no better validation MCC for {patience} validations")
        return "early_stopping"
    if stop.now():
        return stop.reason
    # Each process reads its own clock: agree, or one would stop while the others go on.
    if epoch + 1 < tcfg.epochs and any_process(accelerator, not run.deadline.next_epoch_fits()):
        accelerator.print(
            f"training.max_hours: the next epoch would not fit; stopping after epoch {epoch + 1}"
        )
        return "max_hours"
    return "completed"


def _state_due(cfg: GlacierConfig, epoch: int) -> bool:
    return (epoch + 1) % cfg.checkpoints.save_every == 0 or epoch + 1 == cfg.training.epochs


def finish(run: _Run, stopped_reason: str) -> RunResult:
    """Write ``last/``, ``best/`` (the last model when nothing was validated) and result.json."""
    accelerator, state, run_dir = run.accelerator, run.state, run.run_dir
    epochs_run = state.epoch
    last_metrics = _model_metrics(run.last_metrics, epochs_run) if run.last_metrics else {"epoch": epochs_run}
    run.save_model(run_dir / "last", last_metrics, epochs_run)
    best_dir, best_metrics = _best_model(run, last_metrics)
    result = RunResult(run_dir, best_dir, best_metrics, epochs_run, stopped_reason)
    if run.is_main:
        atomic.write_json(run_dir / RESULT_FILE, result.to_dict())
        best_text = (
            f"best val MCC {state.best_mcc:.4f} (epoch {state.best_epoch})"
            if state.best_mcc is not None
            else "no validation"
        )
        accelerator.print(f"{stopped_reason} after {epochs_run} epochs; {best_text}; run folder {run_dir}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if run.own_accelerator:
        accelerator.free_memory()
    return result


def _best_model(run: _Run, last_metrics: dict[str, Any]) -> tuple[Path | None, dict[str, Any]]:
    best_dir = run.run_dir / "best"
    if run.state.best_epoch is None:
        # No validation (data.use_all_for_training): the best model is the last one.
        if run.is_main:
            with atomic.atomic_dir(best_dir) as tmp:
                shutil.copytree(run.run_dir / "last", tmp, dirs_exist_ok=True)
        return best_dir, last_metrics
    if not run.cfg.checkpoints.save_best:
        return None, {}
    return best_dir, _read_model_metrics(best_dir)


def _read_model_metrics(folder: Path) -> dict[str, Any]:
    from glacier.model_meta import is_model_folder, read_model_meta

    return read_model_meta(folder).metrics if is_model_folder(folder) else {}


__all__ = ["RunResult", "StepOutput", "fit", "train_step", "validate", "all_finite", "pad_to_stride"]
