"""An exponential moving average (EMA) of the weights: what a run validates and saves.

    ema = build_ema(cfg.training.ema, accelerator.unwrap_model(model))  # after ``prepare``; None if off
    with registered(accelerator, ema):                                 # states carry it
        ema.update(accelerator.unwrap_model(model))                    # after every optimizer step
        validate(ema.module); save(ema.module)                         # the run's model

timm's ``ModelEmaV2`` keeps the average (parameters and batch-norm statistics); the decay
warms up with the number of updates, ``1 - n ** -warmup_power`` capped at ``decay`` (the
first update copies the model), as timm's ``ModelEmaV3`` does it, so short CPU runs average
over their last few hundred steps and long ones over thousands. V2 rather than V3: V3 came
with timm 0.9.12, and segmentation-models-pytorch 0.3.4 (glacier's lower bound, the
platform's release) pins timm 0.9.7.
The average is registered with Accelerate while its run lasts (``registered``), so saved
states carry it (``custom_checkpoint_0.pkl``) and a resumed run continues the same average.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from glacier.config import EmaConfig


class WeightAverage:
    """The EMA of one model's weights, counted in optimizer steps."""

    def __init__(self, model: nn.Module, cfg: EmaConfig) -> None:
        from timm.utils.model_ema import ModelEmaV2

        self.average = ModelEmaV2(model, decay=cfg.decay)
        self.average.requires_grad_(False)
        self.cfg = cfg
        self.updates = 0

    @property
    def module(self) -> nn.Module:
        """The averaged model (same class as the trained one)."""
        return self.average.module

    @property
    def decay(self) -> float:
        """The decay the next update will use."""
        return self.decay_at(self.updates + 1)

    def decay_at(self, update: int) -> float:
        """The decay of update number ``update`` (1 = the first): 0 for the first, then
        ``1 - update ** -warmup_power`` capped at ``cfg.decay`` (timm's ModelEmaV3 rule)."""
        step = update - 1
        if step <= 0:
            return 0.0
        return max(0.0, min(1 - (1 + step) ** -self.cfg.warmup_power, self.cfg.decay))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights in (call after each optimizer step, unwrapped model)."""
        self.updates += 1
        self.average.decay = self.decay_at(self.updates)
        self.average.update(model)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.module.load_state_dict(state["module"])


def build_ema(cfg: EmaConfig, model: nn.Module) -> WeightAverage | None:
    """The EMA of ``model`` (unwrapped) when ``training.ema.enabled``; None otherwise."""
    return WeightAverage(model, cfg) if cfg.enabled else None


@contextlib.contextmanager
def registered(accelerator, ema: WeightAverage | None) -> Iterator[None]:
    """Let Accelerate's states carry ``ema`` while the block runs. A sequence of runs (CV
    folds, ensemble members) shares one accelerator, and its list of checkpointed objects
    would otherwise still hold the earlier runs' averages."""
    if ema is None:
        yield
        return
    accelerator.register_for_checkpointing(ema)
    try:
        yield
    finally:
        accelerator._custom_objects.remove(ema)  # Accelerate has no public way to unregister
