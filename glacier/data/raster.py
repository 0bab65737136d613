"""GeoTIFF reading and writing through rasterio, with clear errors for bad files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from glacier.atomic import atomic_file
from glacier.errors import DataError


def read_raster(path: str | Path, bands: list[int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a GeoTIFF as (C, H, W) in its own dtype, with its profile (crs, transform, ...).

    ``bands`` are 1-based band numbers (default: all). Unreadable or truncated files raise
    a DataError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with rasterio.open(path) as src:
            data = src.read(bands)
            profile = dict(src.profile)
            profile["descriptions"] = tuple(src.descriptions)
    except (RasterioError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read this GeoTIFF ({exc}); is it truncated or not a TIFF?") from None
    return data, profile


def read_single_band(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a one-band GeoTIFF as (H, W); a DataError if it has more than one band."""
    data, profile = read_raster(path)
    if data.shape[0] != 1:
        raise DataError(f"{path}: expected one band, found {data.shape[0]}")
    return data[0], profile


def write_raster(
    path: str | Path,
    data: np.ndarray,
    profile: dict[str, Any] | None = None,
    descriptions: list[str] | tuple[str, ...] | None = None,
    nodata: float | None = None,
) -> None:
    """Write (H, W) or (C, H, W) ``data`` as a GeoTIFF, atomically.

    ``profile`` supplies georeferencing (``crs``, ``transform``) from a source raster; the
    dtype, size and band count always come from ``data``.
    """
    array = data[None] if data.ndim == 2 else data
    meta: dict[str, Any] = {
        "driver": "GTiff",
        "count": array.shape[0],
        "height": array.shape[1],
        "width": array.shape[2],
        "dtype": array.dtype.name,
    }
    if profile:
        meta.update({k: profile[k] for k in ("crs", "transform") if profile.get(k) is not None})
    if nodata is not None:
        meta["nodata"] = nodata
    meta["compress"] = "deflate"
    with atomic_file(path) as tmp, rasterio.open(tmp, "w", **meta) as dst:
        dst.write(array)
        if descriptions:
            for i, text in enumerate(descriptions, start=1):
                dst.set_band_description(i, text)
