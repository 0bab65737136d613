"""Windows over a scene: stride padding, overlapping tile positions and blending weights.

A scene larger than a tile is cut into overlapping windows; each window's probabilities
are weighted by a 2-D Hann window (high in the middle, low near its edges, where the
network sees least context) and the weighted sum is divided by the summed weights, so
seams do not show. Sizes that the network's stride does not divide are reflect-padded at
the bottom and right and the result is cropped back to the input size.
"""

from __future__ import annotations

import math

import numpy as np

from glacier.errors import ConfigError


def pad_to_multiple(image: np.ndarray, stride: int) -> np.ndarray:
    """Reflect-pad a (C, H, W) array at the bottom and right to multiples of ``stride``.

    numpy's reflect mode repeats the reflection, so even a scene smaller than the padding
    works.
    """
    height, width = image.shape[-2:]
    pad_h = (-height) % stride
    pad_w = (-width) % stride
    lead = [(0, 0)] * (image.ndim - 2)
    # Reflection needs two pixels along an axis; a one-pixel axis is repeated instead.
    if pad_h:
        image = np.pad(image, lead + [(0, pad_h), (0, 0)], mode="reflect" if height > 1 else "edge")
    if pad_w:
        image = np.pad(image, lead + [(0, 0), (0, pad_w)], mode="reflect" if width > 1 else "edge")
    return image


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of windows of ``tile`` pixels covering ``length``, evenly spread.

    Neighbouring windows overlap by at least ``overlap`` of a tile; the last window ends
    exactly at ``length``.
    """
    if tile >= length:
        return [0]
    step = max(1, int(tile * (1.0 - overlap)))
    count = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def blend_weights(height: int, width: int) -> np.ndarray:
    """A (height, width) float32 2-D Hann window, strictly positive (no division by zero)."""

    def hann(n: int) -> np.ndarray:
        # Sampled at pixel centres, so the edge values are small but never 0.
        return 0.5 - 0.5 * np.cos(2.0 * np.pi * (np.arange(n) + 0.5) / n)

    return np.outer(hann(height), hann(width)).astype(np.float32)


def check_tile_size(tile_size: int | None, stride: int) -> int | None:
    """A tile size rounded down to a multiple of the network's stride (None: whole scenes)."""
    if tile_size is None:
        return None
    rounded = (int(tile_size) // stride) * stride
    if rounded < stride:
        raise ConfigError(f"tile size {tile_size} px is smaller than the network's stride {stride} px")
    return rounded


def check_overlap(overlap: float) -> float:
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap {overlap} must be in [0, 1) (a fraction of the tile size)")
    return float(overlap)
