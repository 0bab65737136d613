"""Labels as a person draws them: outlines a pixel or two off the true boundaries.

Real glacier inventories are digitised by hand (often on other imagery than the one
labelled), so their outlines are smoothed, shifted and generalised relative to the true
class boundaries. A perfect model of the true surface therefore cannot reach MCC 1.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from glacier.sampledata.noise import smooth_noise


def _warp(classes: np.ndarray, d_row: np.ndarray, d_col: np.ndarray) -> np.ndarray:
    """Nearest-neighbour lookup of ``classes`` at positions shifted by (d_row, d_col)."""
    height, width = classes.shape
    rows, cols = np.mgrid[0:height, 0:width]
    r = np.clip(np.round(rows + d_row).astype(np.intp), 0, height - 1)
    c = np.clip(np.round(cols + d_col).astype(np.intp), 0, width - 1)
    return classes[r, c]


def _displacement(rng: np.random.Generator, shape: tuple[int, int], amplitude: float, scale: float):
    """A smooth random displacement field: the outline wanders slowly, as a hand does."""
    sigma = max(6.0 * scale, 2.0)
    return amplitude * smooth_noise(rng, shape, sigma), amplitude * smooth_noise(rng, shape, sigma)


def _drop_small(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """Remove connected regions smaller than ``min_pixels`` (too small to digitise)."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[labels]


def hand_drawn_labels(rng: np.random.Generator, truth: np.ndarray, scale: float) -> np.ndarray:
    """Class indices 0..3 as a digitiser would outline ``truth``.

    Glacier outlines wander by about 1.5 px; the debris / clean-ice boundary, hard to see
    even for experts, by about 3 px; tiny ice patches are left out.
    """
    # The hand wanders a fixed distance on the ground: fewer pixels in a coarser image.
    wander = max(scale, 0.5)
    d_row, d_col = _displacement(rng, truth.shape, 1.5 * wander, scale)
    glacier = _warp(np.isin(truth, (1, 2)), d_row, d_col)
    glacier = _drop_small(glacier, max(3, int(30 * scale**2)))
    e_row, e_col = _displacement(rng, truth.shape, 3.0 * wander, scale)
    debris = _warp(truth == 2, d_row + e_row, d_col + e_col) & glacier
    lake = _warp(truth == 3, d_row * 0.5, d_col * 0.5)  # lakes are clearly visible
    labels = np.zeros(truth.shape, np.uint8)
    labels[glacier] = 1
    labels[debris] = 2
    labels[lake] = 3
    return labels
