"""Test-time augmentation: every transformed copy goes through the network in ONE forward pass.

The copies of a batch are stacked along the batch dimension, the network runs once, each
copy's softmax is mapped back to the original orientation and the probabilities are
averaged. One large batch keeps a GPU busy where a Python loop of small forwards would not.

    probs = tta_probabilities(model, x, "flip")    # x (B, C, H, W) -> (B, K, H, W)

The exported submission script (glacier/submission/solution_template.py) repeats these
transforms in the same order; change both together.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from glacier.errors import ConfigError
from glacier.options import TTA_MODES

Transform = tuple[int, bool]
"""(quarter turns k of torch.rot90 over (H, W), then a flip of W): the dihedral group D4."""

# Keyed by glacier.options.TTA_MODES, in that order (tests/test_cli_usage.py checks it).
TTA_TRANSFORMS: dict[str, tuple[Transform, ...]] = {
    "none": ((0, False),),
    # identity, horizontal flip, vertical flip (= a half turn followed by a horizontal flip)
    "flip": ((0, False), (0, True), (2, True)),
    "d4": tuple((k, flip) for flip in (False, True) for k in range(4)),
}


def check_tta(mode: str) -> str:
    """Validate a TTA mode name; a ConfigError names the valid ones."""
    if mode not in TTA_TRANSFORMS:
        raise ConfigError(f"unknown TTA mode {mode!r}; use one of {', '.join(TTA_MODES)}")
    return mode


def apply_transform(x: torch.Tensor, transform: Transform) -> torch.Tensor:
    """Apply one dihedral transform to the last two dimensions of ``x``."""
    k, flip = transform
    if k:
        x = torch.rot90(x, k, dims=(-2, -1))
    if flip:
        x = torch.flip(x, dims=(-1,))
    return x


def invert_transform(x: torch.Tensor, transform: Transform) -> torch.Tensor:
    """Undo :func:`apply_transform` (flip first, then turn back)."""
    k, flip = transform
    if flip:
        x = torch.flip(x, dims=(-1,))
    if k:
        x = torch.rot90(x, -k, dims=(-2, -1))
    return x


def tta_probabilities(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mode: str = "none"
) -> torch.Tensor:
    """Class probabilities (B, K, H, W), float32, averaged over the TTA copies of ``x``.

    ``forward`` maps a batch to logits. Copies whose shape differs (quarter turns of a
    non-square batch) form a second group; within a group the copies share one forward.
    """
    transforms = TTA_TRANSFORMS[check_tta(mode)]
    batch = x.shape[0]
    groups: dict[tuple[int, ...], list[Transform]] = {}
    for transform in transforms:
        shape = tuple(x.shape[-2:]) if transform[0] % 2 == 0 else tuple(x.shape[-2:])[::-1]
        groups.setdefault(shape, []).append(transform)
    total = None
    for group in groups.values():
        stacked = torch.cat([apply_transform(x, t) for t in group], dim=0)
        probs = torch.softmax(forward(stacked).float(), dim=1)
        for i, transform in enumerate(group):
            restored = invert_transform(probs[i * batch : (i + 1) * batch], transform)
            total = restored if total is None else total + restored
    return total / len(transforms)
