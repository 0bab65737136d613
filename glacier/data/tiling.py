"""Cutting images into fixed-size square tiles; edge remainders are padded, never dropped."""

from __future__ import annotations

import numpy as np

from glacier.domain import IGNORE_INDEX


def tile_offsets(height: int, width: int, tile_size: int) -> list[tuple[int, int]]:
    """Top-left (row, col) of non-overlapping tiles covering a height x width image, row-major."""
    return [(r, c) for r in range(0, height, tile_size) for c in range(0, width, tile_size)]


def effective_tile_size(requested: int, shapes: list[tuple[int, int]]) -> int:
    """The requested tile size, clamped to the largest image dimension.

    Images smaller than a tile would otherwise be mostly padding: 128 px images with a
    requested 512 px tile give 128 px tiles.
    """
    largest = max((max(h, w) for h, w in shapes), default=requested)
    return max(1, min(requested, largest))


def pad_image(image: np.ndarray, tile_size: int) -> np.ndarray:
    """Pad a (C, h, w) float image to (C, T, T) with NaN (no data)."""
    c, h, w = image.shape
    if h == w == tile_size:
        return image
    out = np.full((c, tile_size, tile_size), np.nan, dtype=np.float32)
    out[:, :h, :w] = image
    return out


def pad_mask(mask: np.ndarray, tile_size: int) -> np.ndarray:
    """Pad an (h, w) class-index mask to (T, T) with the ignore index."""
    h, w = mask.shape
    if h == w == tile_size:
        return mask
    out = np.full((tile_size, tile_size), IGNORE_INDEX, dtype=np.uint8)
    out[:h, :w] = mask
    return out


def cut_tile(
    image: np.ndarray, mask: np.ndarray, row: int, col: int, tile_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The tile at (row, col) of a (C, H, W) image and its (H, W) mask, padded to T x T."""
    window = np.s_[row : row + tile_size, col : col + tile_size]
    return pad_image(image[(slice(None), *window)], tile_size), pad_mask(mask[window], tile_size)


def ignore_no_data(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mask with every pixel that is NaN in any band set to the ignore index."""
    no_data = np.isnan(image).any(axis=0)
    if not no_data.any():
        return mask
    mask = mask.copy()
    mask[no_data] = IGNORE_INDEX
    return mask
