"""Weight averaging ("model soup"): fold members fine-tuned from one starting point -> one model.

Averaging the weights of models fine-tuned from the same initialisation often lands in the
same basin and costs one forward instead of N. It is meaningless for models trained from
different random starts, which this module cannot detect; compare soup and probability
ensemble on validation data (``glacier evaluate``) before shipping a soup.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from glacier.errors import ModelError
from glacier.models import GlacierModel


def _as_model(item: Any) -> GlacierModel:
    return item[0] if isinstance(item, tuple) else item


def check_soup_compatible(models: Sequence[GlacierModel]) -> None:
    """A ModelError unless every model has the same architecture, bands and tensor shapes."""
    if not models:
        raise ModelError("a soup needs at least one model")
    first = models[0]
    first_state = first.state_dict()
    for i, model in enumerate(models[1:], start=1):
        if model.arch_config != first.arch_config:
            diff = {
                k: (first.arch_config.get(k), model.arch_config.get(k))
                for k in set(first.arch_config) | set(model.arch_config)
                if first.arch_config.get(k) != model.arch_config.get(k)
            }
            raise ModelError(
                f"cannot average weights: member {i} has another architecture ({diff}); "
                "use the probability ensemble (without --soup) instead"
            )
        if tuple(model.bands) != tuple(first.bands):
            raise ModelError(
                f"cannot average weights: member {i} takes bands {list(model.bands)}, "
                f"member 0 takes {list(first.bands)}"
            )
        state = model.state_dict()
        mismatched = [k for k in first_state if k not in state or state[k].shape != first_state[k].shape]
        if mismatched or set(state) != set(first_state):
            raise ModelError(f"cannot average weights: member {i}'s tensors differ ({mismatched[:3]})")


def soup_models(models: Sequence[Any]) -> GlacierModel:
    """One model whose weights are the mean of ``models``' (GlacierModels or (model, meta) pairs).

    Floating-point tensors (weights and BatchNorm running statistics) are averaged; integer
    buffers (BatchNorm's batch counters) are taken from the first model.
    """
    nets = [_as_model(m) for m in models]
    check_soup_compatible(nets)
    states = [m.state_dict() for m in nets]
    averaged = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            stacked = torch.stack([s[key].detach().to("cpu", torch.float32) for s in states])
            averaged[key] = stacked.mean(dim=0).to(value.dtype)
        else:
            averaged[key] = value.detach().cpu().clone()
    soup = copy.deepcopy(nets[0]).cpu()
    soup.load_state_dict(averaged, strict=True)
    return soup.eval()


def soup_with_meta(models: Sequence[tuple[GlacierModel, Any]]) -> tuple[GlacierModel, Any]:
    """``(soup, meta)``: the soup of ``models`` with their shared metadata.

    The members must share normalisation statistics (one soup reads one normalisation).
    """
    metas = [meta for _, meta in models]
    first_stats = metas[0].normalization
    for i, meta in enumerate(metas[1:], start=1):
        if meta.normalization != first_stats:
            raise ModelError(
                f"cannot average weights: member {i} was trained with other normalisation statistics; "
                "use the probability ensemble (without --soup) instead"
            )
    return soup_models(models), metas[0]
