"""Mountain terrain: elevation, slope, valleys, and how the sun lights it (incl. cast shadows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glacier.sampledata.noise import blur, fractal_noise, rescale, smooth_noise


@dataclass(frozen=True)
class Sun:
    """Sun position: elevation above the horizon and azimuth clockwise from north, degrees."""

    elevation: float
    azimuth: float


@dataclass
class Terrain:
    """Terrain fields of one scene, all (H, W) float arrays."""

    elevation: np.ndarray  # metres
    slope: np.ndarray  # degrees
    northness: np.ndarray  # cos(aspect): +1 on north-facing slopes
    valley: np.ndarray  # > 0 in valleys (m below the local mean surface), < 0 on ridges
    direct: np.ndarray  # direct-sun factor relative to a flat surface, 0 in cast shadow
    shadow: np.ndarray  # 0..1, 1 = in a cast or self shadow
    pixel_m: float  # ground size of one pixel used for the geometry


def make_elevation(
    rng: np.random.Generator, shape: tuple[int, int], low: float, pixel_m: float, median_slope: float
) -> np.ndarray:
    """Fractal mountain elevation (m): smooth massifs plus sharp ridges, with broad valleys.

    Ridged noise (1 - |n|) makes knife-edge crests; the power > 1 on the combined height
    flattens valley floors and sharpens peaks, as glacial erosion does. The relief is set
    so that the median slope is ``median_slope`` degrees, whatever the image size.
    """
    height, width = shape
    size = min(shape)
    massif = fractal_noise(rng, shape, beta=4.0)
    # Ridged multifractal: crest lines (where a smooth field crosses zero) at several
    # scales, finer ones weaker, give main ridges with spurs and gullies between them.
    crests = np.zeros(shape)
    for octave in range(4):
        sigma = size / 10 / 2**octave
        crests += 0.5**octave * (1.0 - np.abs(smooth_noise(rng, shape, sigma))) ** 2
    valleys = np.exp(-((fractal_noise(rng, shape, beta=3.6) / 0.3) ** 2))
    # A regional tilt: one side of the image is the high range, the other drains it.
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    tilt = (np.cos(angle) * xx / width + np.sin(angle) * yy / height) * rng.uniform(0.1, 0.5)
    combined = 0.6 * massif + 0.5 * crests - 0.5 * valleys + tilt
    shape01 = rescale(combined) ** 1.3
    d_row, d_col = np.gradient(shape01, pixel_m)
    relief = np.tan(np.radians(median_slope)) / (np.median(np.hypot(d_row, d_col)) + 1e-12)
    return low + np.clip(relief, 1500.0, 4500.0) * shape01


def slope_and_normals(elevation: np.ndarray, pixel_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slope (degrees), and the east and north components of the unit surface normal's tilt."""
    d_row, d_col = np.gradient(elevation, pixel_m)
    dz_east, dz_north = d_col, -d_row  # rows grow southward
    slope = np.degrees(np.arctan(np.hypot(dz_east, dz_north)))
    return slope, dz_east, dz_north


def cast_shadow(elevation: np.ndarray, pixel_m: float, sun: Sun, max_px: float) -> np.ndarray:
    """True where a ridge between the pixel and the sun blocks direct sunlight.

    Marches towards the sun in geometric steps (dense near the pixel, sparse far away):
    a pixel is shadowed if the terrain at distance d rises above its own height plus
    d * tan(sun elevation).
    """
    height, width = elevation.shape
    az = np.radians(sun.azimuth)
    step_col, step_row = np.sin(az), -np.cos(az)
    rise_per_px = pixel_m * np.tan(np.radians(sun.elevation))
    rows, cols = np.mgrid[0:height, 0:width]
    horizon = np.full(elevation.shape, -np.inf)
    distances = np.unique(np.round(np.geomspace(1, max(max_px, 2), 28)))
    for dist in distances:
        r = np.clip(np.round(rows + dist * step_row).astype(np.intp), 0, height - 1)
        c = np.clip(np.round(cols + dist * step_col).astype(np.intp), 0, width - 1)
        np.maximum(horizon, elevation[r, c] - dist * rise_per_px, out=horizon)
    return horizon > elevation


def describe_terrain(elevation: np.ndarray, sun: Sun, pixel_m: float) -> Terrain:
    """Everything derived from an elevation model: slope, aspect, valleys, sunlight and shadows."""
    shape = elevation.shape
    relief = float(elevation.max() - elevation.min())
    scale = min(shape) / 512
    slope, dz_east, dz_north = slope_and_normals(elevation, pixel_m)
    norm = np.sqrt(dz_east**2 + dz_north**2 + 1.0)
    # A north-facing slope falls towards the north: dz_north < 0.
    northness = np.where(slope > 1.0, -dz_north / np.maximum(np.hypot(dz_east, dz_north), 1e-9), 0.0)
    el, az = np.radians(sun.elevation), np.radians(sun.azimuth)
    sun_vec = np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])
    cos_incidence = (-dz_east * sun_vec[0] - dz_north * sun_vec[1] + sun_vec[2]) / norm
    relief_px = relief / (pixel_m * np.tan(el))
    shadowed = cast_shadow(elevation, pixel_m, sun, max_px=min(relief_px, max(shape)))
    # Penumbra and adjacency soften shadow edges over about a pixel.
    shadow = blur(np.maximum(shadowed, cos_incidence <= 0).astype(np.float32), 0.7)
    direct = np.clip(cos_incidence, 0.0, None) / np.sin(el) * (1.0 - shadow)
    valley = blur(elevation, 40 * scale) - blur(elevation, 2 * scale)
    return Terrain(
        elevation=elevation,
        slope=slope,
        northness=northness,
        valley=valley,
        direct=np.clip(direct, 0.0, 2.5),
        shadow=shadow,
        pixel_m=pixel_m,
    )
