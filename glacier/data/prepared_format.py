"""The prepared-dataset format: what ``glacier preprocess`` writes and training reads.

    PREP/manifest.json   what the arrays hold: MANIFEST_KEYS, described in docs/ARCHITECTURE.md
    PREP/images.npy      float32 (N, C, T, T) raw band values (not normalised), NaN = no data
    PREP/masks.npy       uint8   (N, T, T) class indices 0..3, 255 = ignore (no data, padding)

The writer (``glacier.data.prepare``) and the reader (``glacier.data.prepared``) share this
module and nothing else, so the reader never loads the writer. Change the format only with a
new ``FORMAT_VERSION`` and a reader for the old one.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

FORMAT = "glacier-prepared"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
IMAGES = "images.npy"
MASKS = "masks.npy"
FILES = (MANIFEST, IMAGES, MASKS)
IMAGE_DTYPE = np.float32
MASK_DTYPE = np.uint8
MANIFEST_KEYS = (
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
"""Every key of ``manifest.json``, in the order they are written."""


def image_shape(num_tiles: int, num_bands: int, tile_size: int) -> tuple[int, int, int, int]:
    """Shape of ``images.npy``."""
    return (num_tiles, num_bands, tile_size, tile_size)


def mask_shape(num_tiles: int, tile_size: int) -> tuple[int, int, int]:
    """Shape of ``masks.npy``."""
    return (num_tiles, tile_size, tile_size)


def manifest_text(**values: Any) -> str:
    """``manifest.json`` as written: the format and its version, then ``values`` in
    ``MANIFEST_KEYS`` order (the same values always give the same bytes)."""
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **values}
    if set(manifest) != set(MANIFEST_KEYS):
        raise ValueError(f"manifest keys {sorted(manifest)} are not {sorted(MANIFEST_KEYS)}")
    return json.dumps({key: manifest[key] for key in MANIFEST_KEYS}, indent=1) + "\n"


def manifest_problem(manifest: Any) -> str | None:
    """What makes ``manifest`` unreadable by this version (None when it is readable)."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"not a {FORMAT} manifest"
    if manifest.get("format_version") != FORMAT_VERSION:
        return f"format version {manifest.get('format_version')} is not {FORMAT_VERSION}"
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        return f"it lacks {', '.join(missing)}"
    return None
