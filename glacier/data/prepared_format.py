"""The prepared-dataset format: what ``glacier preprocess`` writes and training reads.

    PREP/manifest.json   what the arrays hold: MANIFEST_KEYS, described in docs/ARCHITECTURE.md
    PREP/images.npy      float16 (N, C, T, T) standardised band values, (x - mean) / std with the
                         manifest's ``stats``, NaN = fill (no data, padding)
    PREP/masks.npy       uint8   (N, T, T) class indices 0..3, 255 = ignore (fill, padding)

Version 1 stored float32 raw values (not standardised) and had no fill or quality keys; it is
still read (``values_standardized(1)`` is False). Standardised float16 keeps 11 significant
bits of a value that is a few units from 0: steps of at most 0.002 std within 4 std of the
mean, finer than the 8-bit digital numbers of Landsat 7, whatever the input's scale (the
competition's is unknown, and raw float16 would overflow above 65504).

The writer (``glacier.data.prepare``) and the reader (``glacier.data.prepared``) share this
module and nothing else, so the reader never loads the writer. Change the format only with a
new ``FORMAT_VERSION`` and a reader for the old one.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

FORMAT = "glacier-prepared"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
IMAGES = "images.npy"
MASKS = "masks.npy"
FILES = (MANIFEST, IMAGES, MASKS)
IMAGE_DTYPES = {1: np.dtype(np.float32), 2: np.dtype(np.float16)}
IMAGE_DTYPE = IMAGE_DTYPES[FORMAT_VERSION]
MASK_DTYPE = np.dtype(np.uint8)
STANDARDIZED_LIMIT = float(np.finfo(np.float16).max)
"""Standardised values beyond +-this are clipped to it (float16's largest finite value)."""
MANIFEST_KEYS_V1 = (
    "format",
    "format_version",
    "dataset",
    "source",
    "bands",
    "sensor_bands",
    "classes",
    "class_values",
    "ignore_index",
    "tile_size",
    "num_tiles",
    "num_folds",
    "stats",
    "class_counts",
    "images",
    "tiles",
    "options",
    "created_by",
)
MANIFEST_KEYS = (
    *MANIFEST_KEYS_V1[: MANIFEST_KEYS_V1.index("stats")],
    "image_values",
    "stats",
    "fill_fraction",
    "class_counts",
    "labels_snapped",
    "mask_check",
    *MANIFEST_KEYS_V1[MANIFEST_KEYS_V1.index("images") :],
)
"""Every key of a version-2 ``manifest.json``, in the order they are written.

``image_values``: ``{"dtype": "float16", "standardized": true}``; ``fill_fraction``: share of
the source images' pixels that are fill (each image lists its own); ``labels_snapped``: label
pixels moved to the nearest class value (``--snap-labels``); ``mask_check``: the HKH clean /
debris check's figures, or null."""
_KEYS = {1: MANIFEST_KEYS_V1, 2: MANIFEST_KEYS}


def manifest_keys(version: int = FORMAT_VERSION) -> tuple[str, ...]:
    """The keys of a manifest of ``version``, in written order."""
    return _KEYS[version]


def values_standardized(version: int) -> bool:
    """Whether ``images.npy`` of ``version`` holds standardised values (else raw ones)."""
    return version >= 2


def encode_images(standardized: np.ndarray, version: int = FORMAT_VERSION) -> tuple[np.ndarray, int]:
    """Values as ``images.npy`` of ``version`` stores them, and how many were clipped.

    ``standardized`` is what version 2 stores, ``(x - mean) / std`` with NaN at fill; the
    caller passes raw values for version 1.
    """
    if not values_standardized(version):
        return np.asarray(standardized, dtype=IMAGE_DTYPES[version]), 0
    out = np.asarray(standardized, dtype=np.float32)
    beyond = np.abs(out) > STANDARDIZED_LIMIT
    clipped = int(beyond.sum())
    if clipped:
        out = np.clip(out, -STANDARDIZED_LIMIT, STANDARDIZED_LIMIT)
    return out.astype(IMAGE_DTYPES[version]), clipped


def prepared_bytes(num_tiles: int, num_bands: int, tile_size: int, version: int = FORMAT_VERSION) -> int:
    """Bytes of ``images.npy`` + ``masks.npy`` for ``num_tiles`` tiles (headers aside)."""
    pixels = num_tiles * tile_size * tile_size
    return pixels * (num_bands * IMAGE_DTYPES[version].itemsize + MASK_DTYPE.itemsize)


def image_shape(num_tiles: int, num_bands: int, tile_size: int) -> tuple[int, int, int, int]:
    """Shape of ``images.npy``."""
    return (num_tiles, num_bands, tile_size, tile_size)


def mask_shape(num_tiles: int, tile_size: int) -> tuple[int, int, int]:
    """Shape of ``masks.npy``."""
    return (num_tiles, tile_size, tile_size)


def manifest_text(version: int = FORMAT_VERSION, **values: Any) -> str:
    """``manifest.json`` as written: the format and its version, then ``values`` in
    ``manifest_keys(version)`` order (the same values always give the same bytes)."""
    keys = manifest_keys(version)
    manifest = {"format": FORMAT, "format_version": version, **values}
    if set(manifest) != set(keys):
        raise ValueError(f"manifest keys {sorted(manifest)} are not {sorted(keys)}")
    return json.dumps({key: manifest[key] for key in keys}, indent=1) + "\n"


def manifest_problem(manifest: Any) -> str | None:
    """What makes ``manifest`` unreadable by this version (None when it is readable)."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"not a {FORMAT} manifest"
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in READABLE_VERSIONS:
        newest = max(READABLE_VERSIONS)
        hint = "; upgrade glacier" if isinstance(version, int) and version > newest else ""
        return f"format version {version!r} is not one this glacier reads ({', '.join(map(str, READABLE_VERSIONS))}){hint}"
    missing = [key for key in manifest_keys(version) if key not in manifest]
    if missing:
        return f"it lacks {', '.join(missing)}"
    return None
