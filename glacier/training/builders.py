"""Turn the config into training objects: the run's data, optimizer, learning-rate
schedule, data loaders.

The one place where config values become keyword arguments (like timm's
``optimizer_kwargs``); the loop never reads optimizer or sampler settings itself.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from glacier.config import GlacierConfig, OptimizerConfig, SamplerConfig, SchedulerConfig
from glacier.domain import resolve_bands
from glacier.errors import ConfigError, GlacierError
from glacier.normalization import BandStats


@dataclasses.dataclass(frozen=True)
class RunData:
    """The prepared dataset as one run sees it: the chosen bands, their statistics, the split.

    A run standardises its inputs with its *own training dataset's* statistics (restricted
    to the chosen bands) and every model folder it writes carries them.
    """

    prepared: Any
    """The ``PreparedDataset``."""
    bands: tuple[str, ...]
    stats: BandStats
    sensor_bands: list[str] | None
    train_idx: np.ndarray
    val_idx: np.ndarray

    @classmethod
    def open(cls, cfg: GlacierConfig) -> RunData:
        """``data.path`` with ``data.bands``, split by ``data.fold`` (or all tiles training)."""
        from glacier.data.prepared import PreparedDataset

        prepared = PreparedDataset.open(cfg.data.path)
        _check_crop(cfg, prepared)
        bands = _select_bands(cfg, prepared)
        sensor_all = prepared.manifest.get("sensor_bands")
        train_idx, val_idx = prepared.train_val_indices(
            cfg.data.fold,
            use_all=cfg.data.use_all_for_training,
            min_valid_fraction=cfg.data.min_valid_fraction,
            split_seed=cfg.fold_split_seed,
        )
        if len(train_idx) == 0:
            raise GlacierError(
                f"{cfg.data.path}: no training tiles for fold {cfg.data.fold} with these settings"
            )
        return cls(
            prepared,
            bands,
            stats=prepared.stats.select(bands),
            sensor_bands=[sensor_all[list(prepared.bands).index(b)] for b in bands] if sensor_all else None,
            train_idx=train_idx,
            val_idx=val_idx,
        )


def _check_crop(cfg: GlacierConfig, prepared) -> None:
    # A crop larger than the tiles is padding around the tile (and 100000 px is 186 GiB).
    if cfg.data.crop_size > prepared.tile_size:
        raise ConfigError(
            f"data.crop_size {cfg.data.crop_size} is larger than the tiles of {cfg.data.path} "
            f"({prepared.tile_size} px): use --set data.crop_size={prepared.tile_size} or less, "
            "or preprocess with a larger --tile-size"
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


def build_optimizer(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """AdamW (default), Adam or SGD with momentum, from ``training.optimizer``."""
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


class LrSchedule:
    """Linear warm-up, then cosine annealing per optimizer step, ReduceLROnPlateau on
    validation MCC (mode max, per epoch), or a constant rate.

    Warm-up lasts ``warmup_steps`` optimizer steps (else ``warmup_epochs`` epochs of them).
    Cosine falls from the base rate to ``min_lr`` over the run's remaining optimizer steps
    (``epochs * steps_per_epoch``), one value per step, so a step budget ends at ``min_lr``.
    A run resumed with another length (``--epochs``, ``training.steps``) continues from the
    rate it had and anneals to ``min_lr`` by its new end, so the length is safe to change.

    Not handed to ``accelerator.prepare``: Accelerate would step an epoch-level scheduler
    once per process. Its state travels in the trainer state JSON instead.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, epochs: int, steps_per_epoch: int
    ) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        steps_per_epoch = max(steps_per_epoch, 1)
        self.warmup_steps = cfg.warmup_steps or cfg.warmup_epochs * steps_per_epoch
        self.total_steps = max(epochs * steps_per_epoch, 1)
        self.steps = 0
        self._anchor = (self.warmup_steps, 1.0)  # (step, scale) the cosine starts falling from
        self.plateau = None
        if cfg.name == "plateau":
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=cfg.factor, patience=cfg.patience, min_lr=cfg.min_lr
            )
        self._apply()

    @property
    def in_warmup(self) -> bool:
        return self.steps < self.warmup_steps

    def scale(self, step: int) -> float:
        """The share of the way from ``min_lr`` (cosine; else 0) to the base rate after
        ``step`` optimizer steps (plateau's own reductions aside)."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.cfg.name != "cosine":
            return 1.0
        start, height = self._anchor
        span = max(self.total_steps - start, 1)
        return height * 0.5 * (1.0 + math.cos(math.pi * min(max(step - start, 0), span) / span))

    def _apply(self) -> None:
        if self.plateau is not None and self.steps > self.warmup_steps:
            return  # plateau owns the rate after the warm-up
        scale = self.scale(self.steps)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            floor = min(self.cfg.min_lr, base) if self.cfg.name == "cosine" else 0.0
            group["lr"] = floor + (base - floor) * scale

    def step_batch(self) -> None:
        """After each optimizer step."""
        self.steps += 1
        self._apply()

    def step_epoch(self, val_mcc: float | None) -> None:
        """After each epoch; ``val_mcc`` None (no validation this epoch) leaves plateau alone."""
        if self.plateau is not None and not self.in_warmup and val_mcc is not None:
            self.plateau.step(val_mcc)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return {
            "steps": self.steps,
            "total_steps": self.total_steps,
            "anchor": list(self._anchor),
            "lrs": [group["lr"] for group in self.optimizer.param_groups],
            "inner": self.plateau.state_dict() if self.plateau is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        if self.plateau is not None and state.get("inner") is not None:
            self.plateau.load_state_dict(state["inner"])
        saved_total = int(state.get("total_steps", self.total_steps))
        self._anchor = tuple(state.get("anchor", self._anchor))
        if saved_total != self.total_steps and self.steps >= self.warmup_steps:
            # Another length on resume: fall from where the rate is now to the new end.
            self._anchor = (self.steps, self.scale_at_saved(saved_total))
        for group, lr in zip(self.optimizer.param_groups, state["lrs"], strict=True):
            group["lr"] = lr

    def scale_at_saved(self, saved_total: int) -> float:
        """The cosine scale the saved run (``saved_total`` steps long) had reached."""
        current, self.total_steps = self.total_steps, saved_total
        try:
            return self.scale(self.steps)
        finally:
            self.total_steps = current


def steps_per_epoch(cfg: GlacierConfig, train_tiles: int, num_processes: int) -> int:
    """Optimizer steps per epoch: the epoch's samples in batches, the batches sharded over
    the processes (Accelerate evens them out), grouped by gradient accumulation."""
    training = cfg.training
    samples = training.sampler.samples_per_epoch or train_tiles
    batches = math.ceil(math.ceil(samples / training.batch_size) / num_processes)
    return max(1, math.ceil(batches / training.grad_accum_steps))


DEFAULT_EPOCHS = 50
"""The length of a run whose config states neither ``training.epochs`` nor ``training.steps``."""


def resolve_length(cfg: GlacierConfig, per_epoch: int) -> tuple[GlacierConfig, str]:
    """The config with ``training.epochs`` decided, and the line that says how.

    ``epochs`` when given (a preset's or ``--epochs``), else enough whole epochs for the
    ``steps`` budget, else ``DEFAULT_EPOCHS``; ``per_epoch`` counts optimizer steps.
    """
    training = cfg.training
    if training.epochs is not None:
        epochs = training.epochs
        why = "training.epochs" + (
            f" (the step budget {training.steps} is not used)" if training.steps else ""
        )
    elif training.steps is not None:
        epochs = max(1, math.ceil(training.steps / per_epoch))
        why = f"the step budget training.steps={training.steps}"
    else:
        epochs, why = DEFAULT_EPOCHS, "the default (neither training.steps nor training.epochs)"
    line = f"length: {epochs * per_epoch} optimizer steps = {epochs} epochs x {per_epoch} steps, from {why}"
    return cfg.updated(**{"training.epochs": epochs}), line


def build_sampler(cfg: SamplerConfig, tile_class_counts: np.ndarray, seed: int) -> Sampler[int]:
    """The training sampler over positions ``0..len(tile_class_counts)-1``: the same order on
    every process (seeded by ``(seed, epoch)``), so Accelerate shards it into disjoint batches."""
    size = len(tile_class_counts)
    num_samples = cfg.samples_per_epoch or size
    from glacier.data.sampler import BalancedTileSampler, UniformTileSampler

    if cfg.name == "uniform":
        return UniformTileSampler(size, num_samples, seed)
    return BalancedTileSampler(
        tile_class_counts,
        dict(cfg.target_shares),
        num_samples,
        seed,
        uniform_mix=cfg.uniform_mix,
        max_weight=cfg.max_weight,
    )


def sampler_line(sampler) -> str:
    """What a run's sampler draws, said once at the start: its effective sample size (how
    many distinct tiles its draws amount to) and, when balanced, its expected class shares."""
    tiles = len(getattr(sampler, "probabilities", ())) or sampler.num_tiles
    line = (
        f"sampler: {type(sampler).__name__}, {len(sampler)} samples per epoch, effective sample "
        f"size {sampler.effective_sample_size:.1f} of {tiles} tiles"
    )
    if hasattr(sampler, "probabilities"):
        shares = ", ".join(f"{k} {v:.1%}" for k, v in sampler.expected_shares.items())
        line += f", largest tile weight {sampler.probabilities.max() * tiles:.2f}x uniform; expected shares {shares}"
    return line


def build_loaders(cfg: GlacierConfig, run_data: RunData) -> tuple[DataLoader, DataLoader | None, list]:
    """Training loader (random crops, augmentation, sampler) and validation loader (whole
    tiles, no augmentation, in order). Returns them plus the objects whose ``set_epoch`` the
    loop calls (dataset and sampler), which Accelerate's wrappers do not reach."""
    from glacier.data.augment import build_augmentation
    from glacier.data.prepared import TileDataset
    from glacier.data.sampler import NumberedDraws

    data, training = cfg.data, cfg.training
    prepared, bands, stats = run_data.prepared, list(run_data.bands), run_data.stats
    train_set = TileDataset(
        prepared,
        run_data.train_idx,
        bands=bands,
        crop_size=data.crop_size,
        augment=build_augmentation(data.augment, data.augment_backend, stats=stats, level=data.augment_level),
        stats=stats,
        seed=training.seed,
        rare_crop_p=training.sampler.rare_crop_p,
        rare_classes=training.sampler.rare_crop_classes,
    )
    sampler = build_sampler(training.sampler, prepared.tile_class_counts[run_data.train_idx], training.seed)
    common = {"num_workers": data.num_workers, "pin_memory": torch.cuda.is_available()}
    train_loader = DataLoader(
        train_set, batch_size=training.batch_size, sampler=NumberedDraws(sampler), drop_last=False, **common
    )
    val_loader = None
    if len(run_data.val_idx):
        val_set = TileDataset(
            prepared, run_data.val_idx, bands=bands, crop_size=None, augment=False, stats=stats
        )
        val_loader = DataLoader(val_set, batch_size=training.batch_size, shuffle=False, **common)
    return train_loader, val_loader, [train_set, sampler]
