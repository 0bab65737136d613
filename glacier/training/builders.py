"""Turn the config into training objects: the run's data, optimizer, learning-rate
schedule, data loaders.

The one place where config values become keyword arguments (like timm's
``optimizer_kwargs``); the loop never reads optimizer or sampler settings itself.
"""

from __future__ import annotations

import dataclasses
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
    """Linear warmup over the first ``warmup_epochs`` (per optimizer step), then per epoch:
    ReduceLROnPlateau on validation MCC (mode max), cosine annealing to ``min_lr``, or none.

    Not handed to ``accelerator.prepare``: Accelerate would step an epoch-level scheduler
    once per process. Its state travels in the trainer state JSON instead.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, epochs: int, steps_per_epoch: int
    ) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.warmup_steps = cfg.warmup_epochs * max(steps_per_epoch, 1)
        self.steps = 0
        self.inner: torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None
        if cfg.name == "plateau":
            self.inner = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=cfg.factor, patience=cfg.patience, min_lr=cfg.min_lr
            )
        elif cfg.name == "cosine":
            self.inner = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(epochs - cfg.warmup_epochs, 1), eta_min=cfg.min_lr
            )
        else:
            self.inner = None
        if self.warmup_steps:
            self._set_scale(1.0 / (self.warmup_steps + 1))

    @property
    def in_warmup(self) -> bool:
        return self.steps < self.warmup_steps

    def _set_scale(self, scale: float) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * scale

    def step_batch(self) -> None:
        """After each optimizer step."""
        if self.in_warmup:
            self.steps += 1
            self._set_scale(min(1.0, (self.steps + 1) / (self.warmup_steps + 1)))

    def step_epoch(self, val_mcc: float | None) -> None:
        """After each epoch; ``val_mcc`` None (no validation this epoch) leaves plateau alone."""
        if self.in_warmup or self.inner is None:
            return
        if isinstance(self.inner, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if val_mcc is not None:
                self.inner.step(val_mcc)
        else:
            self.inner.step()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return {
            "steps": self.steps,
            "lrs": [group["lr"] for group in self.optimizer.param_groups],
            "inner": self.inner.state_dict() if self.inner is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        if self.inner is not None and state.get("inner") is not None:
            self.inner.load_state_dict(state["inner"])
        for group, lr in zip(self.optimizer.param_groups, state["lrs"], strict=True):
            group["lr"] = lr


def build_sampler(cfg: SamplerConfig, tile_class_counts: np.ndarray, seed: int) -> Sampler[int]:
    """The training sampler over positions ``0..len(tile_class_counts)-1``: the same order on
    every process (seeded by ``(seed, epoch)``), so Accelerate shards it into disjoint batches."""
    size = len(tile_class_counts)
    num_samples = cfg.samples_per_epoch or size
    from glacier.data.sampler import BalancedTileSampler, UniformTileSampler

    if cfg.name == "uniform":
        return UniformTileSampler(size, num_samples, seed)
    return BalancedTileSampler(tile_class_counts, dict(cfg.target_shares), num_samples, seed)


def build_loaders(cfg: GlacierConfig, run_data: RunData) -> tuple[DataLoader, DataLoader | None, list]:
    """Training loader (random crops, augmentation, sampler) and validation loader (whole
    tiles, no augmentation, in order). Returns them plus the objects whose ``set_epoch`` the
    loop calls (dataset and sampler), which Accelerate's wrappers do not reach."""
    from glacier.data.augment import build_augmentation
    from glacier.data.prepared import TileDataset

    data, training = cfg.data, cfg.training
    prepared, bands, stats = run_data.prepared, list(run_data.bands), run_data.stats
    train_set = TileDataset(
        prepared,
        run_data.train_idx,
        bands=bands,
        crop_size=data.crop_size,
        augment=build_augmentation(data.augment, data.augment_backend),
        stats=stats,
        seed=training.seed,
    )
    sampler = build_sampler(training.sampler, prepared.tile_class_counts[run_data.train_idx], training.seed)
    common = {"num_workers": data.num_workers, "pin_memory": torch.cuda.is_available()}
    train_loader = DataLoader(
        train_set, batch_size=training.batch_size, sampler=sampler, drop_last=False, **common
    )
    val_loader = None
    if len(run_data.val_idx):
        val_set = TileDataset(
            prepared, run_data.val_idx, bands=bands, crop_size=None, augment=False, stats=stats
        )
        val_loader = DataLoader(val_set, batch_size=training.batch_size, shuffle=False, **common)
    return train_loader, val_loader, [train_set, sampler]
