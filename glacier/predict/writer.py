"""Write prediction outputs: masks, probability maps and overlay pictures.

Masks keep the input's file name and georeferencing (CRS and transform of its first band).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from glacier.data.raster import write_raster
from glacier.domain import CLASS_NAMES, index_to_encoded


def write_mask(path: str | Path, indices: np.ndarray, profile: dict[str, Any] | None) -> Path:
    """Write class indices (H, W) as a uint8 GeoTIFF in the 0/85/170/255 encoding."""
    write_raster(path, index_to_encoded(indices), profile)
    return Path(path)


def write_probabilities(path: str | Path, probs: np.ndarray, profile: dict[str, Any] | None) -> Path:
    """Write (K, H, W) probabilities as a K-band uint8 GeoTIFF, probability x 255, bands named by class.

    uint8 keeps a 512 x 512 x 4 map at 1 MiB (0.4% resolution is plenty to inspect or to
    average later); divide by 255 to read probabilities back.
    """
    scaled = np.clip(np.rint(np.asarray(probs, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    write_raster(
        path, scaled, profile, descriptions=[f"p({name}) x 255" for name in CLASS_NAMES[: len(scaled)]]
    )
    return Path(path)


def write_overlay(path: str | Path, image: np.ndarray, bands: tuple[str, ...], indices: np.ndarray) -> Path:
    """Write a PNG of the scene (true colour where it has red/green/blue) under the class colours."""
    from glacier import plots  # matplotlib is only needed here

    plots.save_overlay(path, image, bands, indices)
    return Path(path)
