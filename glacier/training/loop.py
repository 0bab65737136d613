"""The one training loop: pretraining, each cross-validation fold and each ensemble member.

    from glacier.config import load_config
    from glacier.training import fit
    result = fit(load_config("tiny", data="prepared/competition", epochs=2))

    accelerate launch -m glacier finetune --config competition_finetune --fold 0

``fit`` reads like accelerate's ``complete_cv_example``: build everything from the config,
``prepare`` once, then per epoch train (``accumulate`` / ``backward`` / ``clip_grad_norm_``
in ``train_step``), validate (``gather_for_metrics`` on per-tile confusion matrices, so the
tiles Accelerate duplicates to even out the last batch are not counted twice), record, and
``save_state`` when due. The loop does not know which phase it runs: the config says which
data, bands, weights to start from and where to write.

Three objects carry what the page does not spell out: ``RunData`` (glacier/training/
builders.py: the dataset as the run sees it), ``StopPolicy`` (glacier/training/checkpoints.py:
when to keep the best model, save a state and stop, and where a resumed run picks up) and
``RunFolder`` (glacier/artifacts/run.py: every file the run writes).

Normalisation: a run standardises its inputs with its *own training dataset's* statistics
and saves them in every model folder it writes. A fine-tuned model therefore carries the
statistics it was trained with, and prediction never has to guess which dataset a model's
inputs looked like. Weights transferred from a pretrained model adapt to the new statistics
during fine-tuning, like they adapt to the new sensor.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

from glacier.artifacts.run import BEST_DIR, LAST_DIR, RunFolder, RunResult
from glacier.config import GlacierConfig
from glacier.domain import IGNORE_INDEX, NUM_CLASSES
from glacier.errors import ConfigError
from glacier.training.builders import (
    LrSchedule,
    RunData,
    build_loaders,
    build_optimizer,
    resolve_length,
    sampler_line,
    steps_per_epoch,
)
from glacier.training.checkpoints import StopPolicy
from glacier.training.ema import WeightAverage, build_ema, registered
from glacier.training.head_reset import reinit_segmentation_head
from glacier.training.history import EpochSums, epoch_line, epoch_row
from glacier.training.initial_weights import freeze_unused_parameters, init_report_line, init_weights
from glacier.training.pretrained_encoder import ensure_encoder_weights
from glacier.training.provenance import ModelWriter, model_metrics
from glacier.training.recipe import recipe_line
from glacier.training.resuming import plan_start
from glacier.training.run_lock import claim_run_folder
from glacier.training.step import StepOutput, all_finite, pad_to_stride, progress_bar, train_step, validate


@dataclasses.dataclass
class Parts:
    """What a run trains with: built from the config and ``prepare``d once."""

    model: Any
    optimizer: Any
    loss_fn: Any
    schedule: LrSchedule
    train_loader: Any
    val_loader: Any | None
    epoch_aware: list
    """Dataset and sampler, whose ``set_epoch`` Accelerate's wrappers do not reach."""
    stride: int
    """The network's output stride: validation pads whole tiles to a multiple of it."""
    ema: WeightAverage | None = None
    """The average of the weights (``training.ema``), updated after every optimizer step."""

    def evaluated(self):
        """The weights that are validated and saved as the run's model: the average if any."""
        return self.ema.module if self.ema is not None else self.model


def fit(
    cfg: GlacierConfig,
    *,
    accelerator=None,
    init_from: str | Path | None = None,
    resume: str | Path | None = None,
    out: str | Path | None = None,
) -> RunResult:
    """Train the model ``cfg`` describes; write the run folder (glacier/artifacts/run.py).

    ``init_from`` (else ``cfg.model.init_from``) starts from a model folder or Hub id, bands
    matched by name. ``resume`` is ``"latest"``, a run folder or a ``states/state_NNNNNN``
    folder: training continues exactly where that state was saved. ``out`` overrides
    ``cfg.out``. Every process of an ``accelerate launch`` calls ``fit``; only the main
    process writes files. Returns the same RunResult on every process.

    The run folder is locked while the run lasts (``run_lock.claim_run_folder``: a second
    run there is refused), a resumed run must keep the settings its state was trained with
    (``resuming.plan_start``), and a damaged latest state falls back to the one before it.
    """
    cfg = _resolve_config(cfg, out, init_from)
    folder = RunFolder(cfg.out)
    own_accelerator = accelerator is None
    if own_accelerator:
        accelerator = _default_accelerator(cfg, folder)
    # One process trains in a run folder at a time; a failed start leaves nothing behind.
    with claim_run_folder(folder, accelerator, inputs=[cfg.data.path, cfg.model.init_from]):
        return _fit(cfg, folder, accelerator, own_accelerator, resume)


def _fit(cfg: GlacierConfig, folder: RunFolder, accelerator, own_accelerator: bool, resume) -> RunResult:
    """``fit`` in its claimed run folder: the page the module docstring describes."""
    from accelerate.utils import set_seed

    # Open the data and decide the length (a step budget becomes epochs) first: a resumed
    # run compares the resolved config with the one it was started with.
    data = RunData.open(cfg)
    cfg, length_line = resolve_length(
        cfg, steps_per_epoch(cfg, len(data.train_idx), accelerator.num_processes)
    )
    start = plan_start(folder, cfg, resume, accelerator)
    resume_from = start.state

    # Build everything from the config, `prepare` once, then restore a saved state.
    set_seed(cfg.training.seed)
    model, init_report = _build_model(cfg, data, None if resume_from else cfg.model.init_from, accelerator)
    parts = _prepare(accelerator, cfg, data, model)
    policy = StopPolicy(cfg, accelerator)
    with registered(accelerator, parts.ema):  # saved states carry the weight average
        if resume_from is not None:
            policy.resume(folder, resume_from, parts.schedule)
        models = ModelWriter(folder, cfg, data, init_report)
        _start_run_folder(folder, cfg, accelerator, data, init_report, policy.resumed_epoch)
        accelerator.print(f"recipe: {recipe_line(cfg)}\n{length_line}\n{sampler_line(parts.epoch_aware[1])}")
        start.record(folder, cfg, accelerator)

        latest: dict[str, Any] = {}  # the latest validation's metrics
        latest_epoch: int | None = None  # the epoch they are of
        with policy:
            for epoch in policy.epochs():
                started = time.monotonic()
                sums = train_epoch(accelerator, parts, policy, epoch, cfg)
                if policy.stopped_mid_epoch:
                    policy.save_state(folder, parts.schedule, sums)
                    break
                validation = _validate_and_record(accelerator, folder, parts, cfg, epoch, sums, started)
                if validation is not None:
                    latest, latest_epoch = validation, epoch + 1
                end = policy.end_epoch(epoch, None if validation is None else validation["mcc"])
                if end.keep_best and accelerator.is_main_process:
                    models.write(BEST_DIR, accelerator.unwrap_model(parts.evaluated()), latest, epoch + 1)
                accelerator.wait_for_everyone()
                if end.save_state:
                    policy.save_state(folder, parts.schedule)
                if end.stop:
                    break

        result = _finish(accelerator, folder, parts, models, policy, latest, latest_epoch)
    # Not end_training(): it also destroys the process group, which the next run of a
    # sequence (the next fold, member) still needs; the command ends it (workflows.py).
    for tracker in accelerator.trackers:
        tracker.finish()
    if own_accelerator:
        accelerator.free_memory()
    return result


# ----------------------------------------------------------------------------- build
def _resolve_config(
    cfg: GlacierConfig, out: str | Path | None, init_from: str | Path | None
) -> GlacierConfig:
    """The config as this run uses it: ``out`` and ``init_from`` written in."""
    run_dir = Path(out if out is not None else cfg.out)
    init_from = init_from if init_from is not None else cfg.model.init_from
    cfg = cfg.updated(
        **{"out": str(run_dir), "model.init_from": None if init_from is None else str(init_from)}
    )
    if cfg.data.path is None:
        raise ConfigError("no prepared dataset: pass --data PREP (a `glacier preprocess` output folder)")
    return cfg


def _default_accelerator(cfg: GlacierConfig, folder: RunFolder):
    from accelerate import Accelerator

    # Mixed precision comes from `accelerate launch --mixed_precision` / the accelerate
    # config, not from our config: fp16 on T4s, bf16 where supported, none on CPU.
    return Accelerator(
        gradient_accumulation_steps=cfg.training.grad_accum_steps,
        log_with="tensorboard",
        project_dir=str(folder.logs),
    )


def _build_model(cfg: GlacierConfig, data: RunData, init_from: str | Path | None, accelerator):
    """The model, initialised from ``init_from`` if given; returns it and the transfer report."""
    from glacier.models import build_model

    ensure_encoder_weights(cfg.model.encoder, cfg.model.encoder_weights)  # missing: one clear error
    model = build_model(cfg.model, data.bands, num_classes=NUM_CLASSES)
    init_report = init_weights(model, init_from, data.bands) if init_from is not None else None
    if init_report is not None and cfg.model.reinit_head:
        # HKH has no lake: a transferred head has learnt never to predict one.
        init_report["reinitialised"] = reinit_segmentation_head(model)
        accelerator.print("segmentation head re-initialised after the transfer (model.reinit_head)")
    # Always (not only under DDP), so that a state saved by N processes loads in 1.
    unused = freeze_unused_parameters(model, len(data.bands))
    if unused:
        accelerator.print(f"{len(unused)} parameter tensors are never used by the forward pass: frozen")
    return model, init_report


def _prepare(accelerator, cfg: GlacierConfig, data: RunData, model) -> Parts:
    """The optimizer, loaders and loss of ``model``, ``prepare``d once; the LR schedule."""
    from glacier.losses import CombinedLoss

    optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], cfg.training.optimizer)
    train_loader, val_loader, epoch_aware = build_loaders(cfg, data)
    loss_fn = CombinedLoss(
        **cfg.training.loss.model_dump(), num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX
    )
    stride = model.stride  # before `prepare`: a DDP wrapper does not have it
    if val_loader is None:
        model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    else:
        model, optimizer, train_loader, val_loader = accelerator.prepare(
            model, optimizer, train_loader, val_loader
        )
    steps_per_epoch = math.ceil(len(train_loader) / accelerator.gradient_accumulation_steps)
    schedule = LrSchedule(optimizer, cfg.training.scheduler, cfg.training.epochs, steps_per_epoch)
    return Parts(
        model=model,
        optimizer=optimizer,
        loss_fn=loss_fn.to(accelerator.device),
        schedule=schedule,
        train_loader=train_loader,
        val_loader=val_loader,
        epoch_aware=epoch_aware,
        stride=stride,
        ema=build_ema(cfg.training.ema, accelerator.unwrap_model(model)),
    )


def _start_run_folder(
    folder: RunFolder, cfg: GlacierConfig, accelerator, data: RunData, init_report, resumed_epoch: int | None
) -> None:
    """Write config.yaml, open metrics.csv (kept up to a resumed epoch) and the trackers, and
    say what is being trained."""
    if accelerator.is_main_process:
        folder.write_config(cfg)
    folder.open_metrics(resume_after_epoch=resumed_epoch)
    if accelerator.log_with:
        accelerator.init_trackers(cfg.name, config=_flat(cfg.to_dict()))
    accelerator.print(
        f"training {cfg.name}: {len(data.train_idx)} training tiles, {len(data.val_idx)} validation tiles, "
        f"bands {list(data.bands)}, {accelerator.num_processes} process(es) on {accelerator.device}"
        + (f", mixed precision {accelerator.mixed_precision}" if accelerator.mixed_precision != "no" else "")
    )
    if init_report is not None:
        accelerator.print(init_report_line(init_report))


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


# ----------------------------------------------------------------------------- epoch
def train_epoch(accelerator, parts: Parts, policy: StopPolicy, epoch: int, cfg: GlacierConfig) -> EpochSums:
    """Train one epoch (the rest of it, in a resumed run) and return its loss sums; leaves
    early, at an optimizer-step boundary, when ``policy`` says so."""
    tcfg = cfg.training
    for obj in parts.epoch_aware:
        obj.set_epoch(epoch)
    if hasattr(parts.loss_fn, "set_epoch"):
        parts.loss_fn.set_epoch(epoch)
    sums = policy.epoch_sums()
    batches = policy.batches(parts.train_loader, epoch)
    bar = progress_bar(
        accelerator, len(parts.train_loader), f"epoch {epoch + 1}/{tcfg.epochs}", policy.state.batch_in_epoch
    )
    parts.model.train()
    for batch_number, batch in enumerate(batches, start=policy.state.batch_in_epoch + 1):
        out = train_step(accelerator, parts.model, batch, parts.loss_fn, parts.optimizer, tcfg.max_grad_norm)
        stop = policy.after_step(out)
        bar.update()
        if out.finite:
            sums.add(out, len(batch["image"]), batch["mask"])
        if accelerator.sync_gradients:
            parts.schedule.step_batch()
            if parts.ema is not None:
                parts.ema.update(accelerator.unwrap_model(parts.model))
            if batch_number % tcfg.log_every == 0 and accelerator.is_main_process:
                bar.set_postfix(loss=f"{out.loss.item():.4f}", lr=f"{parts.schedule.lr:.2e}", refresh=False)
        if stop:
            break
    bar.close()
    return sums


def _validate(accelerator, parts: Parts) -> dict[str, Any]:
    """The evaluated model's validation metrics (every process takes part)."""
    return validate(
        accelerator, parts.evaluated(), parts.val_loader, parts.loss_fn, parts.stride, NUM_CLASSES
    )


def _validate_and_record(
    accelerator,
    folder: RunFolder,
    parts: Parts,
    cfg: GlacierConfig,
    epoch: int,
    sums: EpochSums,
    started: float,
) -> dict[str, Any] | None:
    """Validate (every ``training.val_every`` epochs and after the last), step the epoch's
    LR schedule, record the epoch's row (metrics.csv, the printed line, the trackers).
    Returns the validation metrics (None: not validated this epoch)."""
    tcfg = cfg.training
    train_seconds = time.monotonic() - started
    lr, train = parts.schedule.lr, sums.reduced(accelerator)
    validation = None
    if parts.val_loader is not None and ((epoch + 1) % tcfg.val_every == 0 or epoch + 1 == tcfg.epochs):
        validation = _validate(accelerator, parts)
    parts.schedule.step_epoch(None if validation is None else validation["mcc"])
    row = epoch_row(epoch + 1, lr, train, validation, time.monotonic() - started, train_seconds)
    if accelerator.is_main_process:
        folder.append_metrics(row)
        accelerator.print(epoch_line(row, tcfg.epochs))
    accelerator.log({k: v for k, v in row.items() if k != "epoch"}, step=epoch + 1)
    return validation


# ---------------------------------------------------------------------------- finish
def _finish(
    accelerator,
    folder: RunFolder,
    parts: Parts,
    models: ModelWriter,
    policy: StopPolicy,
    latest: dict[str, Any],
    latest_epoch: int | None,
) -> RunResult:
    """Write ``last/``, ``best/`` (the last model when nothing was validated, or with
    ``checkpoints.select=last``) and result.json."""
    state, is_main = policy.state, accelerator.is_main_process
    checkpoints = policy.cfg.checkpoints
    epochs_run = state.epoch
    hands_on_last = checkpoints.select == "last" and checkpoints.save_best and state.best_epoch is not None
    if hands_on_last and latest_epoch != epochs_run and not policy.stopped_mid_epoch:
        # A stop between validations (training.val_every > 1): the model handed on carries
        # its own figures, not an earlier epoch's. Every process validates (it is collective).
        latest = _validate(accelerator, parts)
    if is_main:
        models.write(LAST_DIR, accelerator.unwrap_model(parts.evaluated()), latest, epochs_run)
    best_dir: Path | None = folder.best
    if state.best_epoch is None or hands_on_last:
        # No validation (data.use_all_for_training), or checkpoints.select=last: the run
        # hands on its last model.
        if is_main:
            folder.copy_model(LAST_DIR, BEST_DIR)
        best_metrics = model_metrics(latest, epochs_run)
    elif checkpoints.save_best:
        best_metrics = folder.model_metrics(BEST_DIR)
    else:
        best_dir, best_metrics = None, {}
    result = RunResult(folder.path, best_dir, best_metrics, epochs_run, policy.stopped_reason)
    if is_main:
        folder.write_result(result)
        best_text = (
            f"best val MCC {state.best_mcc:.4f} (epoch {state.best_epoch})"
            if state.best_mcc is not None
            else "no validation"
        )
        if hands_on_last:
            best_text = (
                f"hands on its last model (val MCC {best_metrics.get('mcc', float('nan')):.4f}); {best_text}"
            )
        accelerator.print(
            f"{result.stopped_reason} after {epochs_run} epochs; {best_text}; run folder {folder.path}"
        )
    accelerator.wait_for_everyone()
    return result


__all__ = ["Parts", "RunResult", "StepOutput", "fit", "train_step", "validate", "all_finite", "pad_to_stride"]
