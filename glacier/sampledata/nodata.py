"""Zero fill in competition-style tiles: scene edges and masked stripes, 0 in every band.

A tile cut near the edge of its Landsat scene holds the area outside the scene's tilted
footprint; phase-1 band names say ``masked``; public notes on the competition tiles report
band means about equal to their stds and SWIR/TIR ratios near 1e9 (thermal 0 somewhere).
So some sample tiles get a straight, tilted edge beyond which every band is 0, and a few
get thin zero stripes. Their labels there are 0 (no glacier mapped where nothing was seen).
"""

from __future__ import annotations

import numpy as np

EDGE_SHARE = 0.3
"""Share of tiles at a scene edge."""
STRIPE_SHARE = 0.12
"""Share of tiles with masked stripes."""


def _edge(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A tilted scene edge across one side of the tile, covering 5..35% of it."""
    height, width = shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    side = int(rng.integers(4))
    across, along, length, depth = {
        0: (cols, rows, height, width),  # left side
        1: (width - 1 - cols, rows, height, width),  # right
        2: (rows, cols, width, height),  # top
        3: (height - 1 - rows, cols, width, height),  # bottom
    }[side]
    slope = np.tan(np.radians(rng.uniform(8.0, 14.0))) * rng.choice([-1.0, 1.0])
    reach = rng.uniform(0.05, 0.35) * depth
    return across < reach + slope * (along - length / 2)


def _stripes(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """One to three straight, slightly tilted stripes of 1..4 px (at 512 px) across the tile."""
    height, width = shape
    scale = min(shape) / 512
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    slope = np.tan(np.radians(rng.uniform(-6.0, 6.0)))
    offset = rows - slope * (cols - width / 2)
    stripes = np.zeros(shape, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        centre = rng.uniform(0.1, 0.9) * height
        half = max(0.5, rng.uniform(1.0, 4.0) * scale / 2)
        stripes |= np.abs(offset - centre) <= half
    return stripes


def competition_fill(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Bool (H, W): where a competition tile is zero fill (most tiles: nowhere)."""
    fill = np.zeros(shape, dtype=bool)
    if rng.random() < EDGE_SHARE:
        fill |= _edge(rng, shape)
    if rng.random() < STRIPE_SHARE:
        fill |= _stripes(rng, shape)
    return fill
