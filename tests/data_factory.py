"""Tiny datasets for the data tests: real GeoTIFFs with a real CRS, written with rasterio.

Like torchgeo's ``tests/data/*/data.py``: every fixture is generated, small and seeded,
so a test states exactly what it reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
import rasterio.warp
from rasterio.crs import CRS
from rasterio.transform import from_origin

from glacier.domain import CLASS_VALUES, COMPETITION_BAND_FOLDERS, HKH_BANDS, HKH_SENSOR_BANDS

UTM = CRS.from_epsg(32644)  # WGS 84 / UTM 44N, over the Himalaya
PHASE1_PREFIXES = ("B2_B2_masked_", "B3_B3_masked_", "B4_B4_masked_", "B6_B6_masked_", "B10_B10_masked_")


def write_tif(
    path: Path, data: np.ndarray, crs: CRS = UTM, origin=(300000.0, 3300000.0), nodata=None, descriptions=None
):
    """Write (H, W) or (C, H, W) ``data`` as a GeoTIFF with 30 m pixels."""
    array = data[None] if data.ndim == 2 else data
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "count": array.shape[0],
        "height": array.shape[1],
        "width": array.shape[2],
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": from_origin(origin[0], origin[1], 30.0, 30.0),
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
    return path


def class_map(rng: np.random.Generator, shape: tuple[int, int], debris: bool, lake: bool) -> np.ndarray:
    """Class indices: a glacier rectangle, optionally a debris tongue and a small lake."""
    h, w = shape
    mask = np.zeros(shape, dtype=np.uint8)
    top, left = rng.integers(0, h // 3), rng.integers(0, w // 3)
    mask[top : top + h // 2, left : left + w // 2] = 1
    if debris:
        mask[top + h // 2 : top + h // 2 + h // 8, left : left + w // 4] = 2
    if lake:
        mask[h - 6 : h - 2, w - 6 : w - 2] = 3
    return mask


def make_competition(
    root: Path,
    n_images: int = 6,
    size: tuple[int, int] = (40, 40),
    dtype: str = "float32",
    debris_every: int = 2,
    lake_images: tuple[int, ...] = (1, 4),
    phase1: bool = False,
    seed: int = 0,
) -> Path:
    """A competition-layout folder ``root/Train`` (Band1..Band5 + labels/); returns it.

    Image i holds debris when i % debris_every == 0 and a lake when i is in ``lake_images``.
    ``phase1`` uses the phase-1 names (different per folder, ``label/``).
    """
    rng = np.random.default_rng(seed)
    train = root / "Train"
    for i in range(n_images):
        mask = class_map(rng, size, debris=i % debris_every == 0, lake=i in lake_images)
        tile = f"{i // 10:02d}_{i % 10:02d}" if phase1 else f"{i + 1:03d}"
        for b, folder in enumerate(COMPETITION_BAND_FOLDERS):
            band = (100.0 * (b + 1) + 50.0 * mask + rng.normal(0, 5, size)).astype(dtype)
            name = f"{PHASE1_PREFIXES[b]}{tile}.tif" if phase1 else f"img{tile}.tif"
            write_tif(train / folder / name, band)
        label_name = f"Y_output_resized_{tile}.tif" if phase1 else f"img{tile}.tif"
        encoded = np.asarray(CLASS_VALUES, dtype=np.uint8)[mask]
        write_tif(train / ("label" if phase1 else "labels") / label_name, encoded)
    return train


def paint_ice_and_debris(channels: np.ndarray, classes: np.ndarray) -> None:
    """Give clean ice (1) and debris (2) of a (15, H, W) HKH image their physics, in place:
    clean ice bright in green and dark in SWIR-1 (high NDSI), debris rock-like and warmer."""
    green, swir1, tir, ndsi_neg = (HKH_BANDS.index(b) for b in ("green", "swir1", "tir", "ndsi_neg"))
    for cls, (g, s, t) in {1: (190.0, 25.0, 70.0), 2: (80.0, 70.0, 95.0)}.items():
        where = classes == cls
        channels[green, where], channels[swir1, where], channels[tir, where] = g, s, t
        channels[ndsi_neg, where] = (s - g) / (s + g)


def make_hkh_slices(folder: Path, scenes: int = 3, per_scene: int = 2, size: int = 32, seed: int = 0) -> Path:
    """LILA-style ``slice_S_img_N.npy`` (H, W, 15) + ``slice_S_mask_N.npy`` (H, W, 3) pairs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(scenes):
        for n in range(per_scene):
            classes = class_map(rng, (size, size), debris=(s + n) % 2 == 0, lake=False)
            image = rng.normal(100, 10, (size, size, 15)).astype(np.float32)
            image[..., 0] += 50 * (classes > 0)  # blue brighter on ice
            paint_ice_and_debris(image.transpose(2, 0, 1), classes)
            image[: size // 8, :, :] = np.nan  # a scan-line gap
            mask = np.zeros((size, size, 3), dtype=np.uint8)
            mask[..., 1] = classes == 1
            mask[..., 2] = classes == 2
            mask[..., 0] = mask[..., 1] + mask[..., 2]
            np.save(folder / f"slice_{s}_img_{n:03d}.npy", image)
            np.save(folder / f"slice_{s}_mask_{n:03d}.npy", mask)
    return folder


def pixel_box(transform, row0: int, col0: int, row1: int, col1: int) -> dict:
    """A GeoJSON polygon covering pixel rows row0..row1-1 and cols col0..col1-1 of a grid."""
    x0, x1 = transform.c + col0 * transform.a, transform.c + col1 * transform.a
    y0, y1 = transform.f + row0 * transform.e, transform.f + row1 * transform.e
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def make_hkh_scenes(
    root: Path,
    size: tuple[int, int] = (50, 70),
    vector_format: str = "geojson",
    vector_crs: int = 4326,
    seed: int = 0,
) -> dict:
    """Raw HKH layout: one 15-band scene (band descriptions set) + clean/debris polygons.

    The polygons are drawn as pixel boxes on the scene's grid and written in ``vector_crs``
    (reprojected), so reading them back must reproject. Returns the expected pixel counts.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    image = rng.uniform(0, 255, (15, h, w)).astype(np.float32)
    classes = np.zeros(size, np.uint8)
    classes[5:25, 5:35] = 1
    classes[20:30, 10:20] = 2
    paint_ice_and_debris(image, classes)
    image[:, h - 3 :, : w // 4] = np.nan
    transform = from_origin(300000.0, 3300000.0, 30.0, 30.0)
    write_tif(root / "raster_data" / "LE07_140041_20051012.tif", image, descriptions=HKH_SENSOR_BANDS)
    clean = pixel_box(transform, 5, 5, 25, 35)  # 20 x 30 px
    debris = pixel_box(transform, 20, 10, 30, 20)  # 10 x 10 px, overlapping clean by 5 x 10
    layers = {"clean": [clean], "debris": [debris]}
    dst = CRS.from_epsg(vector_crs)
    for name, geometries in layers.items():
        moved = [rasterio.warp.transform_geom(UTM, dst, g) for g in geometries]
        _write_vector(root / "vector_data", name, moved, dst, vector_format)
    return {"clean": 20 * 30 - 5 * 10, "debris": 10 * 10, "shape": size}


def _write_vector(folder: Path, name: str, geometries: list[dict], crs: CRS, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "geojson":
        data = {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": g} for g in geometries],
        }
        if crs != CRS.from_epsg(4326):
            data["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{crs.to_epsg()}"}}
        (folder / f"{name}.geojson").write_text(json.dumps(data))
        return
    import shapefile

    with shapefile.Writer(str(folder / name), shapeType=shapefile.POLYGON) as writer:
        writer.field("id", "N")
        for i, g in enumerate(geometries):
            writer.poly([g["coordinates"][0]])  # a clockwise ring: an exterior in shapefiles
            writer.record(i)
    (folder / f"{name}.prj").write_text(crs.to_wkt(version="WKT1_ESRI"))
