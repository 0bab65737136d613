"""``--batch-size auto``: the largest training batch that fits the GPU, per process.

Found the way PyTorch Lightning's batch-size finder does it in its "binsearch" mode: start
at the preset's batch size, double it while a few real training steps succeed, then
search between the last size that fit and the first that ran out of memory; out-of-memory
errors are caught, memory is released and the next size tried. The steps are the run's
own: its model, loss and optimizer (whose state is allocated at the first step), random
inputs of its crop size and bands, under its mixed precision. A margin (10%) is then taken
off, for what the trial does not hold: DDP's gradient buckets, fragmentation over hours,
cuDNN's workspace choices. Under ``accelerate launch`` every process searches on its own
GPU and all use the smallest answer (``training.batch_size`` is per process). On a CPU
nothing is searched: the preset's value is kept, and said so.

    choice = choose_batch_size(cfg)        # BatchSizeChoice(batch_size=..., largest=..., note=...)
    largest_fitting(fits, start=8, limit=512)   # the search alone, for any ``fits(n) -> bool``
"""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Callable
from pathlib import Path

import torch

from glacier.config import GlacierConfig
from glacier.errors import GlacierError

DEFAULT_MARGIN = 0.10
TRIAL_STEPS = 3
MAX_BATCH = 4096
_OOM_MESSAGES = (
    "out of memory",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_NOT_SUPPORTED",
    "CUDNN_STATUS_ALLOC_FAILED",
)
"""RuntimeError texts that mean the batch did not fit (cuDNN/cuBLAS fail this way too)."""


def largest_fitting(fits: Callable[[int], bool], *, start: int, limit: int) -> int:
    """The largest batch size ``n <= limit`` for which ``fits(n)``, assuming that whatever
    fits, fits smaller too; 0 when not even 1 fits.

    Doubles from ``start`` while sizes fit, then halves the interval between the largest
    size that fit and the smallest that did not: about 2 log2(answer / start) trials.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    fit, failed = 0, limit + 1  # the largest size known to fit, the smallest known not to
    n = max(1, min(start, limit))
    while failed - fit > 1:
        if fits(n):
            fit = n
            n = min(2 * n, limit) if failed == limit + 1 else (fit + failed) // 2
        else:
            failed = n
            n = (fit + failed) // 2
    return fit


def with_margin(largest: int, margin: float) -> int:
    """``largest`` less ``margin`` (a fraction), rounded down, at least 1."""
    return max(1, math.floor(largest * (1.0 - margin)))


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says the batch did not fit in the device's memory."""
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    return isinstance(exc, oom) or (
        isinstance(exc, RuntimeError) and any(m in str(exc) for m in _OOM_MESSAGES)
    )


class TrainingTrial:
    """A few real training steps of ``cfg``'s model at a chosen batch size, on one device.

    The model, loss and optimizer are built once and kept between trials (the optimizer's
    state is memory the run holds too); each trial draws random inputs of ``crop_size``.
    ``benchmarks/gpu_throughput.py`` times the same step.
    """

    def __init__(
        self,
        cfg: GlacierConfig,
        bands: tuple[str, ...],
        crop_size: int,
        device: torch.device,
        mixed_precision: str = "no",
    ) -> None:
        from glacier.domain import IGNORE_INDEX, NUM_CLASSES
        from glacier.losses import CombinedLoss
        from glacier.models import build_model
        from glacier.training.builders import build_optimizer
        from glacier.training.initial_weights import freeze_unused_parameters

        self.cfg, self.bands, self.crop_size, self.device = cfg, bands, crop_size, torch.device(device)
        model = build_model(cfg.model, bands, num_classes=NUM_CLASSES)
        freeze_unused_parameters(model, len(bands))  # as fit does: no gradients for them
        self.model = model.to(self.device).train()
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(trainable, cfg.training.optimizer)
        self.loss_fn = CombinedLoss(
            **cfg.training.loss.model_dump(), num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX
        ).to(self.device)
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision)
        self.scaler = torch.amp.GradScaler(self.device.type) if mixed_precision == "fp16" else None

    def step(self, batch_size: int) -> None:
        """One training step on a random batch: forward under autocast, backward, clip, step."""
        from glacier.domain import NUM_CLASSES

        size = (batch_size, len(self.bands), self.crop_size, self.crop_size)
        image = torch.randn(size, device=self.device)
        mask = torch.randint(0, NUM_CLASSES, (batch_size, self.crop_size, self.crop_size), device=self.device)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            logits, boundary_logits = self.model(image, with_boundary=True)
            loss, _ = self.loss_fn(logits, mask, boundary_logits)
        scaled = self.scaler.scale(loss) if self.scaler is not None else loss
        scaled.backward()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.cfg.training.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.training.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def fits(self, batch_size: int, steps: int = TRIAL_STEPS) -> bool:
        """Whether ``steps`` steps at ``batch_size`` run without exhausting the device's memory."""
        try:
            for _ in range(steps):
                self.step(batch_size)
            self.synchronize()
            return True
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is an answer; the rest re-raised
            if not is_out_of_memory(exc):
                raise
        self.optimizer.zero_grad(set_to_none=True)
        self.release()
        return False

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def release(self) -> None:
        """Give cached device memory back (after an out-of-memory, and when done)."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


@dataclasses.dataclass(frozen=True)
class BatchSizeChoice:
    batch_size: int
    """What the run uses (per process)."""
    largest: int | None
    """The largest size that fit on this process's device (None: nothing was searched)."""
    note: str
    """One line for the user."""


def choose_batch_size(
    cfg: GlacierConfig, *, accelerator=None, margin: float = DEFAULT_MARGIN, steps: int = TRIAL_STEPS
) -> BatchSizeChoice:
    """The batch size for ``cfg`` on this process's device (module docstring); the same
    answer on every process. ``accelerator`` (default: a new one) gives the device and
    the mixed precision, as ``accelerate launch`` sets them."""
    from accelerate import Accelerator

    accelerator = accelerator or Accelerator()
    device, preset = accelerator.device, cfg.training.batch_size
    if device.type != "cuda":
        note = f"--batch-size auto: no GPU ({device.type}), keeping the preset's training.batch_size {preset}"
        return BatchSizeChoice(preset, None, note)
    bands, crop, limit = _trial_shape(cfg, accelerator.num_processes)
    largest = _search(
        TrainingTrial(cfg, bands, crop, device, accelerator.mixed_precision), preset, limit, steps
    )
    name, total = torch.cuda.get_device_name(device), torch.cuda.get_device_properties(device).total_memory
    where = f"{device} ({name}, {total / 2**30:.1f} GiB) at {crop} px crops, precision {accelerator.mixed_precision}"
    mine = with_margin(largest, margin) if largest else 0
    # Every process reaches the gather, also one where nothing fit: then all stop together.
    agreed = int(accelerator.gather(torch.tensor([mine], device=device)).min().item())
    if agreed == 0:
        raise GlacierError(
            f"--batch-size auto: not even a batch of 1 fits on {where} (or another process's GPU); "
            "use a smaller data.crop_size or model"
        )
    capped = " (the cap: samples per epoch per process)" if largest == limit else ""
    note = (
        f"--batch-size auto: {agreed} per process; the largest that fit on {where} was "
        f"{largest}{capped}, less {margin:.0%} kept free"
        + (
            f", the smallest of {accelerator.num_processes} processes"
            if accelerator.num_processes > 1
            else ""
        )
    )
    return BatchSizeChoice(agreed, largest, note)


def _search(trial: TrainingTrial, start: int, limit: int, steps: int) -> int:
    """The largest batch ``trial`` fits; the trial's memory is given back after."""
    try:
        return largest_fitting(lambda n: trial.fits(n, steps), start=start, limit=limit)
    finally:
        trial.model = trial.optimizer = None
        trial.release()


def _trial_shape(cfg: GlacierConfig, processes: int) -> tuple[tuple[str, ...], int, int]:
    """The run's bands and crop size, and the batch cap: an epoch's samples per process."""
    from glacier.training.builders import RunData

    data = RunData.open(cfg)
    crop = cfg.data.crop_size or int(data.prepared.manifest["tile_size"])
    samples = cfg.training.sampler.samples_per_epoch or len(data.train_idx)
    return data.bands, crop, max(1, min(MAX_BATCH, samples // processes))


def with_auto_batch_size(cfg: GlacierConfig, *, resume: str | None, print_fn=None) -> GlacierConfig:
    """``cfg`` with ``training.batch_size`` chosen by ``choose_batch_size``; a resumed
    command keeps the batch size its runs started with (a state continues exactly only
    with the batches it was saved with)."""
    from accelerate import Accelerator

    accelerator = Accelerator()
    say = print_fn or accelerator.print
    started = started_batch_size(Path(cfg.out)) if resume is not None else None
    if started is not None:
        say(f"--batch-size auto: resuming, keeping the batch size the runs started with ({started})")
        return cfg.updated(**{"training.batch_size": started})
    choice = choose_batch_size(cfg, accelerator=accelerator)
    say(choice.note)
    return cfg.updated(**{"training.batch_size": choice.batch_size})


def started_batch_size(out: Path) -> int | None:
    """``training.batch_size`` of the run folders already under ``out`` (the folder, its
    folds ``out/fold_K``, an ensemble's ``out/runs/<member>``), or None."""
    from glacier.artifacts.run import RunFolder

    for folder in (out, *sorted(out.glob("*")), *sorted(out.glob("*/*"))):
        config = RunFolder(folder).config() if folder.is_dir() else None
        if config:
            return int(config["training"]["batch_size"])
    return None
