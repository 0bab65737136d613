"""The ground truth of one scene: which surface lies where (class layout).

Ice accumulates high up and flows down valleys as tongues; the lower tongues carry debris;
proglacial lakes sit at some snouts; seasonal snow lies on high ground outside the
glaciers; moraines of glacier-like rubble flank the tongues; vegetation fills low valleys;
clouds float over everything. Only the glacier classes are labelled: snow, moraines,
shadows and clouds are background that looks like something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import ndimage

from glacier.sampledata.glaciers import GlacierLayout, TongueParameters, glacier_layout
from glacier.sampledata.noise import blur, fractal_noise, rescale, smooth_noise, threshold_for_share
from glacier.sampledata.regions import Region
from glacier.sampledata.terrain import Sun, Terrain, describe_terrain, make_elevation

PIXEL_M = 30.0
"""Ground size of a pixel at the reference size (512 px, 15 km across)."""
REFERENCE_SIZE = 512
_MIN_DEBRIS_TONGUE_M = 600.0
"""Tongues shorter than this (ELA to snout) carry no debris cover: small glaciers stay clean."""


class Material(IntEnum):
    """Surface materials; the spectra module gives each its reflectance and temperature."""

    ROCK = 0
    SOIL = 1
    VEGETATION = 2
    SNOW = 3  # seasonal snow: background
    FIRN = 4  # snow-covered accumulation zone of a glacier
    ICE = 5  # bare glacier ice
    DEBRIS = 6  # debris-covered glacier ice
    MORAINE = 7  # rubble outside the glacier: background
    WATER = 8  # proglacial lake


MATERIAL_CLASS = np.array([0, 0, 0, 0, 1, 1, 2, 0, 3], dtype=np.uint8)
"""Class index of each material (background, glacier, debris, lake)."""


@dataclass
class Scene:
    """One scene's surfaces and the conditions it is observed under."""

    terrain: Terrain
    material: np.ndarray  # uint8 Material codes
    truth: np.ndarray  # uint8 class indices 0..3, the physically true classes
    lithology: np.ndarray  # 0..1, dark to bright rock
    dirt: np.ndarray  # 0..1, how dirty bare ice is (rises towards the debris)
    debris_thickness: np.ndarray  # 0..1, thin near clean ice, thick at the snout
    cloud: np.ndarray  # 0..1 cloud opacity
    cloud_shadow: np.ndarray  # 0..1 share of direct sun blocked by a cloud
    sun: Sun
    air_temperature: float  # K at 4000 m
    gain: float
    scale: float  # image size / reference size: pixel lengths scale with it


def make_scene(rng: np.random.Generator, shape: tuple[int, int], region: Region) -> Scene:
    """Draw one scene's parameters from ``region`` and lay out its surfaces."""
    scale = min(shape) / REFERENCE_SIZE
    sun = Sun(float(rng.uniform(*region.sun_elevation)), float(rng.uniform(*region.sun_azimuth)))
    pixel_m = PIXEL_M / scale  # a smaller image is the same landscape, coarser
    elevation = make_elevation(
        rng,
        shape,
        float(rng.uniform(*region.base_elevation)),
        pixel_m,
        float(rng.uniform(*region.median_slope)),
    )
    tongues = TongueParameters(
        count=int(rng.integers(region.tongue_count[0], region.tongue_count[1] + 1)),
        longest_m=float(rng.uniform(*region.tongue_length_m)),
        half_width_m=float(rng.uniform(*region.tongue_half_width_m)),
        accumulation_share=float(rng.uniform(0.55, 0.75)),
    )
    layout = glacier_layout(rng, elevation, float(rng.uniform(*region.glacier_share)), tongues, pixel_m)
    terrain = describe_terrain(layout.elevation, sun, pixel_m)
    material = np.full(shape, Material.ROCK, dtype=np.uint8)
    lithology = rescale(fractal_noise(rng, shape, beta=2.6))

    glacier = _fill_small_holes(layout.outline, scale)
    debris, thickness, debris_start = _debris_cover(rng, layout, glacier, region, scale)
    ela = _equilibrium_line(terrain, glacier, debris)
    dirt = np.clip((ela - terrain.elevation) / 600.0 + 0.25 * smooth_noise(rng, shape, 4 * scale), 0, 1)
    accumulation = glacier & (terrain.elevation + 120 * smooth_noise(rng, shape, 6 * scale) > ela)

    _vegetation_and_soil(rng, terrain, material, float(rng.uniform(*region.vegetation_share)), scale)
    material[_moraines(rng, layout, glacier, debris_start, scale)] = Material.MORAINE
    snow = _seasonal_snow(rng, terrain, glacier, float(rng.uniform(*region.snow_share)), scale)
    material[snow] = Material.SNOW
    material[glacier] = Material.ICE
    material[accumulation] = Material.FIRN
    material[debris] = Material.DEBRIS
    if rng.random() < region.lake_probability:
        lake = _proglacial_lake(rng, layout, glacier, debris, scale)
        material[lake] = Material.WATER
        if lake.any():  # a lake surface is flat
            terrain.elevation[lake] = terrain.elevation[lake].min()
            terrain.slope[lake] = 0.0

    cloud, cloud_shadow = _clouds(rng, shape, region, sun, scale)
    return Scene(
        terrain=terrain,
        material=material,
        truth=MATERIAL_CLASS[material],
        lithology=lithology,
        dirt=dirt,
        debris_thickness=thickness,
        cloud=cloud,
        cloud_shadow=cloud_shadow,
        sun=sun,
        air_temperature=float(rng.uniform(*region.air_temperature)),
        gain=float(rng.uniform(*region.gain)),
        scale=scale,
    )


def _smooth_mask(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Round off a binary mask's pixel-level corners (blur, then threshold at one half)."""
    return blur(mask.astype(np.float32), sigma) > 0.5


def _fill_small_holes(glacier: np.ndarray, scale: float) -> np.ndarray:
    """Fill nunataks of a few pixels (ice flows around them) and round off pixel corners."""
    glacier = _smooth_mask(glacier, 1.0 * scale + 0.5)
    holes = ndimage.binary_fill_holes(glacier) & ~glacier
    hole_labels, _ = ndimage.label(holes)
    small = np.bincount(hole_labels.ravel()) < max(4, 60 * scale**2)
    small[0] = False
    return glacier | small[hole_labels]


def _debris_cover(
    rng: np.random.Generator,
    layout: GlacierLayout,
    glacier: np.ndarray,
    region: Region,
    scale: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Debris on the lower part of long tongues: continuous down to the snout, patchy at its top.

    Each tongue at least ``_MIN_DEBRIS_TONGUE_M`` long (ELA to snout) carries debris with
    probability ``region.debris_probability``, over the lowest ``region.debris_length``
    share of its length. Rock falls from the valley walls and melts out down-glacier, so
    the cover starts in patches and thickens towards the snout. Small glaciers stay clean.
    Returns the debris mask, its thickness (0..1) and, per pixel of each tongue, the
    position along it where its debris starts (1: none).
    """
    shape = glacier.shape
    count = len(layout.tongues)
    min_length = _MIN_DEBRIS_TONGUE_M / (PIXEL_M / scale)
    # Draw for every tongue, in order, so the stream does not depend on which qualify.
    covered = rng.uniform(*region.debris_length, size=count)
    lucky = rng.random(count) < region.debris_probability
    patches = 0.07 * smooth_noise(rng, shape, 3 * scale + 0.5) + 0.03 * smooth_noise(rng, shape, scale + 0.3)
    start = np.ones(count + 1)  # debris where position > start; 1: none
    for k, tongue in enumerate(layout.tongues):
        if lucky[k] and tongue.length >= min_length:
            start[k + 1] = 1.0 - covered[k]
    top = start[layout.tongue_id]
    on_tongue = glacier & (layout.tongue_id > 0)
    debris = on_tongue & (layout.tongue_position + patches > top)
    debris = _smooth_mask(debris, 0.6 * scale + 0.4) & glacier
    thickness = np.where(
        debris, np.clip((layout.tongue_position - top) / np.maximum(1.0 - top, 1e-6), 0, 1), 0.0
    )
    flank_top = start[np.where(np.isfinite(layout.flank_distance), _nearest_id(layout), 0)]
    return debris, thickness.astype(np.float32), flank_top


def _nearest_id(layout: GlacierLayout) -> np.ndarray:
    """Tongue id of the nearest tongue pixel, for every pixel (0 where there are no tongues)."""
    tongue = layout.tongue_id > 0
    if not tongue.any():
        return np.zeros(tongue.shape, np.int32)
    rows, cols = ndimage.distance_transform_edt(~tongue, return_distances=False, return_indices=True)
    return layout.tongue_id[rows, cols]


def _equilibrium_line(terrain: Terrain, glacier: np.ndarray, debris: np.ndarray) -> float:
    """Equilibrium-line altitude: the upper ~55% of the clean ice is snow-covered firn."""
    clean = glacier & ~debris
    if not clean.any():
        return float(terrain.elevation.max())
    return float(np.quantile(terrain.elevation[clean], 0.45))


def _seasonal_snow(
    rng: np.random.Generator, terrain: Terrain, glacier: np.ndarray, share: float, scale: float
) -> np.ndarray:
    """Snow patches outside the glaciers: high, shaded (north-facing), not too steep."""
    shape = glacier.shape
    if share <= 0:
        return np.zeros(shape, bool)
    score = (
        rescale(terrain.elevation)
        + 0.08 * terrain.northness
        + 0.08 * smooth_noise(rng, shape, 4 * scale)
        + 0.03 * smooth_noise(rng, shape, 1.0)
        - np.where(terrain.slope > 45, 1.0, 0.0)
    )
    outside = ~ndimage.binary_dilation(glacier, iterations=1)
    return outside & (score > threshold_for_share(score, share, where=outside))


def _moraines(
    rng: np.random.Generator,
    layout: GlacierLayout,
    glacier: np.ndarray,
    debris_start: np.ndarray,
    scale: float,
) -> np.ndarray:
    """Lateral moraine ridges along the debris-covered tongues, and rubble below their snouts.

    Same rock as the debris beside them, but not on ice: the debris lookalike.
    """
    shape = glacier.shape
    wobble = 1.2 * scale * (1 + 0.6 * smooth_noise(rng, shape, 4 * scale + 0.5))
    beside = (layout.flank_distance > 0) & (layout.flank_distance <= 1.5 * scale + 0.6 + wobble)
    lower = layout.flank_position + 0.05 * smooth_noise(rng, shape, 3 * scale + 0.5) > debris_start - 0.05
    lateral = beside & lower & ~glacier
    # Terminal moraine and forefield rubble: a strip down the valley floor below each
    # debris-covered snout, as wide as the tongue was, narrowing as it leaves the moraine.
    points, widths = [], []
    for k, tongue in enumerate(layout.tongues):
        if len(tongue.forefield) < 2 or not (debris_start[layout.tongue_id == k + 1] < 1).any():
            continue
        fade = np.linspace(0.0, 1.0, len(tongue.forefield))
        points.append(tongue.forefield)
        widths.append(float(tongue.half_width[-1]) * (1.15 - 0.6 * fade) + 0.5 * scale)
    forefield = np.zeros(shape, bool)
    if points:
        points_all, widths_all = np.concatenate(points), np.concatenate(widths)
        index_image = np.full(shape, -1)
        r = np.clip(np.round(points_all[:, 0]).astype(int), 0, shape[0] - 1)
        c = np.clip(np.round(points_all[:, 1]).astype(int), 0, shape[1] - 1)
        index_image[r, c] = np.arange(len(points_all))
        distance, (near_r, near_c) = ndimage.distance_transform_edt(index_image < 0, return_indices=True)
        wobble = 0.25 * smooth_noise(rng, shape, 2 * scale + 0.5)
        reach = widths_all[index_image[near_r, near_c]] * (1 + wobble)
        forefield = distance <= reach
    return lateral | (forefield & ~glacier)


def _vegetation_and_soil(
    rng: np.random.Generator, terrain: Terrain, material: np.ndarray, share: float, scale: float
) -> None:
    """Vegetation on low, gentle valley slopes; soil on other gentle ground."""
    shape = material.shape
    gentle = terrain.slope < 30
    soil_score = -terrain.slope / 30.0 + 0.5 * smooth_noise(rng, shape, 6 * scale)
    material[gentle & (soil_score > threshold_for_share(soil_score, 0.15, where=gentle))] = Material.SOIL
    if share > 0:
        veg_score = -rescale(terrain.elevation) + 0.15 * smooth_noise(rng, shape, 5 * scale)
        allowed = terrain.slope < 38
        material[allowed & (veg_score > threshold_for_share(veg_score, share, where=allowed))] = (
            Material.VEGETATION
        )


def _proglacial_lake(
    rng: np.random.Generator, layout: GlacierLayout, glacier: np.ndarray, debris: np.ndarray, scale: float
) -> np.ndarray:
    """A small lake at the snout of a tongue (a debris-covered one if any), elongated down-valley."""
    shape = glacier.shape
    trunks = [(k, t) for k, t in enumerate(layout.tongues) if not t.tributary]
    if not trunks:
        return np.zeros(shape, bool)
    covered = [(k, t) for k, t in trunks if (debris & (layout.tongue_id == k + 1)).any()]
    _, tongue = (covered or trunks)[int(rng.integers(len(covered or trunks)))]
    (row, col), direction = tongue.snout
    radius = rng.uniform(2.5, 8.0) * max(scale, 0.35)
    centre = np.array([row, col]) + direction * radius * 0.4
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    along = (yy - centre[0]) * direction[0] + (xx - centre[1]) * direction[1]
    across = -(yy - centre[0]) * direction[1] + (xx - centre[1]) * direction[0]
    elongation = rng.uniform(1.3, 2.2)
    wobble = 0.25 * smooth_noise(rng, shape, max(radius / 2, 1.0))
    lake = (along / (radius * elongation)) ** 2 + (across / radius) ** 2 < 1.0 + wobble
    # Keep the one piece holding the centre: the noisy edge can split off specks.
    pieces, _ = ndimage.label(lake)
    centre_piece = pieces[tuple(np.clip(np.round(centre).astype(int), 0, np.array(shape) - 1))]
    return (pieces == centre_piece) & (centre_piece > 0)


def _clouds(
    rng: np.random.Generator, shape: tuple[int, int], region: Region, sun: Sun, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cloud opacity (thick cores, thin semi-transparent edges) and the shadow it casts."""
    if rng.random() >= region.cloud_probability:
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    field = fractal_noise(rng, shape, beta=3.0) + 0.3 * fractal_noise(rng, shape, beta=2.0)
    threshold = threshold_for_share(field, float(rng.uniform(*region.cloud_share)))
    opacity = np.clip((field - threshold) / rng.uniform(0.4, 1.2), 0.0, 1.0) ** 0.8
    opacity = (opacity * rng.uniform(0.45, 1.0)).astype(np.float32)
    # The shadow lies away from the sun, displaced by cloud height / tan(sun elevation).
    offset_px = rng.uniform(1500, 4000) / np.tan(np.radians(sun.elevation)) / (PIXEL_M / scale)
    az = np.radians(sun.azimuth)
    shift_row, shift_col = int(round(np.cos(az) * offset_px)), int(round(-np.sin(az) * offset_px))
    shadow = ndimage.shift(opacity, (shift_row, shift_col), order=0, mode="constant", cval=0.0)
    return opacity, np.clip(shadow * 0.9, 0, 1).astype(np.float32)
