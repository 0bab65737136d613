"""GeoTIFF reading and writing through rasterio, with clear errors for bad files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from glacier.atomic import atomic_file
from glacier.errors import DataError


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(path: str | Path, needed_bytes: int) -> None:
    """A DataError naming ``path`` when reading it needs more memory than is available.

    Sizes come from file headers, so a damaged or hostile header (60000 x 60000 px) is
    refused before anything is allocated.
    """
    available = available_memory()
    if available is not None and needed_bytes > available:
        raise DataError(
            f"{path}: reading it needs about {needed_bytes / 2**30:.1f} GiB of memory and "
            f"{available / 2**30:.1f} GiB are available; its header's size is wrong, or the file "
            "is too large to read whole (cut it into tiles first)"
        )


def read_raster(path: str | Path, bands: list[int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a GeoTIFF as (C, H, W) in its own dtype, with its profile (crs, transform, ...).

    ``bands`` are 1-based band numbers (default: all). Unreadable or truncated files, and
    files whose header claims more pixels than memory holds, raise a DataError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with rasterio.open(path) as src:
            count = src.count if bands is None else len(bands)
            itemsize = max(np.dtype(d).itemsize for d in src.dtypes)
            # Its own dtype, then the float32 copy the readers make.
            check_fits_in_memory(path, src.height * src.width * count * (itemsize + 4))
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
