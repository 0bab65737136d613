"""Write prediction outputs: masks, probability maps and overlay pictures.

Masks keep the input's file name and georeferencing (CRS and transform of its first band).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from glacier.atomic import atomic_file
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


def true_colour(image: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    """(H, W, 3) uint8 picture of a raw (C, H, W) scene: red/green/blue bands where it has them
    (else its first band in grey), each stretched between its 2nd and 98th percentile."""
    picks = [bands.index(b) for b in ("red", "green", "blue") if b in bands]
    channels = image[picks] if len(picks) == 3 else np.repeat(image[:1], 3, axis=0)
    out = np.zeros(channels.shape, dtype=np.float32)
    for i, channel in enumerate(channels):
        finite = channel[np.isfinite(channel)]
        if finite.size:
            low, high = np.percentile(finite, (2, 98))
            out[i] = np.clip((channel - low) / max(high - low, 1e-12), 0, 1)
    return (np.nan_to_num(out).transpose(1, 2, 0) * 255).astype(np.uint8)


def write_overlay(path: str | Path, image: np.ndarray, bands: tuple[str, ...], indices: np.ndarray) -> Path:
    """Write a PNG of the scene with the predicted non-background classes painted over it
    (half transparent, in the palette every glacier plot uses)."""
    from matplotlib import image as mpimg  # matplotlib is only needed here

    from glacier.plots import colorize

    picture = true_colour(image, bands).astype(np.float32)
    painted = indices != 0
    picture[painted] = 0.45 * picture[painted] + 0.55 * colorize(indices)[painted]
    with atomic_file(path) as tmp:
        mpimg.imsave(tmp, picture.astype(np.uint8), format="png")
    return Path(path)
