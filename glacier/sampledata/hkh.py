"""HKH-style (Landsat 7) scenes: 15 channels, SLC-off scan-line gaps, no-data borders.

A Landsat scene's footprint is a tilted rectangle inside its raster, so border slices hold
no-data corners; after the 2003 scan-line-corrector failure (SLC-off) every scene has
wedge-shaped stripes without data, widest far from the scene centre. HKH labels know clean
and debris-covered ice only: proglacial lakes are on the ground but labelled background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.transform import Affine, from_origin

from glacier.sampledata.labels import hand_drawn_labels
from glacier.sampledata.regions import HKH
from glacier.sampledata.scene import PIXEL_M, make_scene
from glacier.sampledata.sensors import hkh_channels
from glacier.sampledata.spectra import observe

HKH_NO_LAKE = np.array([0, 1, 2, 0], dtype=np.uint8)
"""Class index -> HKH class index: lakes are background in the HKH labels."""


@dataclass
class HkhScene:
    """One synthetic Landsat 7 scene with its labels and georeferencing."""

    name: str  # LE07_PPPRRR_YYYYMMDD
    channels: np.ndarray  # (15, H, W) float32, NaN where there is no data
    labels: np.ndarray  # (H, W) uint8: 0 background, 1 clean ice, 2 debris
    crs: str
    transform: Affine
    outside: np.ndarray  # (H, W) bool: outside the scene's footprint (the gaps aside)


def scene_name(rng: np.random.Generator) -> str:
    """A Landsat 7 product-style name: path/row over the Himalaya, an SLC-off autumn date."""
    path, row = rng.integers(134, 151), rng.integers(36, 42)
    year, month, day = rng.integers(2003, 2012), rng.integers(9, 13), rng.integers(1, 29)
    return f"LE07_{path:03d}{row:03d}_{year:04d}{month:02d}{day:02d}"


def no_data_masks(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where the sensor recorded nothing: (outside a tilted footprint, inside SLC-off gaps)."""
    height, width = shape
    theta = np.radians(rng.uniform(8.0, 14.0))
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    rows -= height / 2 + rng.uniform(-0.08, 0.08) * height
    cols -= width / 2 + rng.uniform(-0.08, 0.08) * width
    across = cols * np.cos(theta) + rows * np.sin(theta)  # cross-track
    along = -cols * np.sin(theta) + rows * np.cos(theta)  # along-track
    inside = (np.abs(across) <= 0.5 * width * rng.uniform(0.9, 1.02)) & (
        np.abs(along) <= 0.5 * height * rng.uniform(0.9, 1.02)
    )
    # SLC-off: gaps repeat every scan (~16 lines) and widen away from the scene's centre line,
    # which lies somewhere off this clip.
    period = rng.uniform(14.0, 20.0)
    centre = rng.uniform(-1.5, 1.5) * width
    gap_width = np.clip(np.abs(across - centre) / (3.0 * width), 0.0, 1.0) * period * 0.45
    gaps = np.mod(along + rng.uniform(0, period), period) < gap_width
    return ~inside, gaps & inside


def make_hkh_scene(
    rng: np.random.Generator, shape: tuple[int, int], crs: str, origin: tuple[float, float]
) -> HkhScene:
    """Generate one HKH scene of ``shape`` with its upper-left corner at ``origin`` (m)."""
    name = scene_name(rng)
    scene = make_scene(rng, shape, HKH)
    obs = observe(rng, scene)
    labels = HKH_NO_LAKE[hand_drawn_labels(rng, scene.truth, scene.scale)]
    channels = hkh_channels(obs, scene.terrain, scene.cloud)
    outside, gaps = no_data_masks(rng, shape)
    channels[:, outside | gaps] = np.nan
    transform = from_origin(origin[0], origin[1], PIXEL_M, PIXEL_M)
    return HkhScene(name, channels, labels, crs, transform, outside)


def slice_scene(
    scene: HkhScene, size: int, zero_outside: bool = False
) -> list[tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
    """Cut a scene into ``size`` x ``size`` slices: (image (S, S, 15), mask (S, S, 3), (row, col)).

    Masks follow the HKH layout: ch0 all glacier, ch1 clean ice, ch2 debris. Slices with no
    data at all are skipped, as the original pipeline does. No data is NaN; with
    ``zero_outside`` the area outside the footprint is 0 in every channel instead (slices
    cut from scenes that stored no-data as 0), and only the scan-line gaps are NaN.
    """
    slices = []
    height, width = scene.labels.shape
    for row in range(0, height - size + 1, size):
        for col in range(0, width - size + 1, size):
            image = scene.channels[:, row : row + size, col : col + size].transpose(1, 2, 0)
            if np.isnan(image).all():
                continue
            if zero_outside:
                image = image.copy()
                image[scene.outside[row : row + size, col : col + size]] = 0.0
            labels = scene.labels[row : row + size, col : col + size]
            clean, debris = labels == 1, labels == 2
            mask = np.stack([clean | debris, clean, debris], axis=-1).astype(np.uint8)
            slices.append((np.ascontiguousarray(image, dtype=np.float32), mask, (row, col)))
    return slices
