"""Band transfer: start a model from one trained on other bands, matching bands by name.

A 7-band HKH model (blue, green, red, nir, swir1, tir, swir2) starts a 5-band competition
model (blue, green, red, swir1, tir): every weight whose shape matches is copied; in the
first convolution the filters of matched bands are kept, in the new band order, and a band
the source never saw starts from the mean of the pretrained filters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from glacier.models.factory import GlacierModel


def first_conv_key(model: nn.Module) -> str:
    """State-dict key of the first convolution's weight (the one that sees the bands)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return f"{name}.weight"
    raise ValueError(f"{type(model).__name__} has no Conv2d layer")


def transfer_weights(
    src_state: Mapping[str, torch.Tensor],
    src_bands: Sequence[str],
    dst_model: GlacierModel,
    dst_bands: Sequence[str],
) -> dict[str, Any]:
    """Load ``src_state`` (trained on ``src_bands``) into ``dst_model`` (for ``dst_bands``).

    ``src_state`` is a GlacierModel state dict (``net.*``, ``boundary_head.*``) or a plain
    smp one. Returns a report: ``matched_bands``, ``unmatched_bands`` (initialised with the
    mean filter), ``dropped_bands`` (source bands the new model does not use),
    ``first_conv``, ``loaded`` (number of tensors copied), ``skipped`` (``{key: reason}``)
    and ``missing`` (keys of the new model the source lacks; they keep their fresh values).
    """
    src_bands, dst_bands = tuple(src_bands), tuple(dst_bands)
    if not any(key.startswith("net.") for key in src_state):
        src_state = {f"net.{key}": value for key, value in src_state.items()}
    dst_state = dst_model.state_dict()
    conv_key = first_conv_key(dst_model)

    new_state: dict[str, torch.Tensor] = {}
    skipped: dict[str, str] = {}
    for key, value in src_state.items():
        if key == conv_key:
            continue
        if key not in dst_state:
            skipped[key] = "not in the new model"
        elif tuple(value.shape) != tuple(dst_state[key].shape):
            skipped[key] = f"shape {tuple(value.shape)} != {tuple(dst_state[key].shape)}"
        else:
            new_state[key] = value

    matched = [band for band in dst_bands if band in src_bands]
    unmatched = [band for band in dst_bands if band not in src_bands]
    if conv_key in src_state:
        src_weight = src_state[conv_key]
        if src_weight.shape[1] != len(src_bands):
            raise ValueError(
                f"{conv_key} has {src_weight.shape[1]} input channels but {len(src_bands)} source bands were given"
            )
        dst_weight = dst_state[conv_key]
        if src_weight.shape[0] != dst_weight.shape[0] or src_weight.shape[2:] != dst_weight.shape[2:]:
            skipped[conv_key] = f"shape {tuple(src_weight.shape)} does not fit {tuple(dst_weight.shape)}"
        else:
            mean_filter = src_weight.mean(dim=1)
            columns = [
                src_weight[:, src_bands.index(band)] if band in src_bands else mean_filter
                for band in dst_bands
            ]
            new_state[conv_key] = torch.stack(columns, dim=1).to(dst_weight.dtype)
    else:
        skipped[conv_key] = "not in the source"

    dst_model.load_state_dict(new_state, strict=False)
    return {
        "matched_bands": matched,
        "unmatched_bands": unmatched,
        "dropped_bands": [band for band in src_bands if band not in dst_bands],
        "first_conv": conv_key,
        "loaded": len(new_state),
        "skipped": skipped,
        "missing": sorted(set(dst_state) - set(new_state)),
    }
