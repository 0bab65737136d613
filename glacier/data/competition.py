"""The competition layout: ``ROOT/Band1..Band5/<name>.tif`` plus ``ROOT/labels/<name>.tif``.

Files pair across folders by tile id (``glacier.domain.tile_id_from_name``), not by exact
name, so phase-1 names (``Band1/B2_B2_masked_02_07.tif``, ``label/Y_output_resized_02_07.tif``)
pair as well as phase-2 ones (``img001.tif`` everywhere). Bands are read in band-folder order.

    scenes = find_scenes("Train", require_labels=True)
    image, profile = read_scene_image(scenes[0])   # float32 (C, H, W), NaN = no data
    mask = read_scene_label(scenes[0])             # uint8 class indices 0..3
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from glacier.data.raster import read_single_band
from glacier.domain import (
    COMPETITION_BAND_FOLDERS,
    COMPETITION_LABEL_FOLDERS,
    encoded_to_index,
    tile_id_from_name,
)
from glacier.errors import DataError

_BAND_FOLDER = re.compile(r"^band(\d+)$", re.IGNORECASE)
_TIFF_SUFFIXES = {".tif", ".tiff"}


@dataclass(frozen=True)
class Scene:
    """One image: a file per band folder (in band order) and, for training data, its label."""

    tile_id: str
    band_paths: tuple[Path, ...]
    label_path: Path | None


def _band_folders_in(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.name: p for p in folder.iterdir() if p.is_dir() and _BAND_FOLDER.match(p.name)}


def find_band_root(root: str | Path) -> Path:
    """The folder that holds the Band<N> folders: ``root`` itself or its single child holding them."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (expected the competition's Train/ or Test/ folder)")
    if _band_folders_in(root):
        return root
    candidates = [child for child in sorted(root.iterdir()) if _band_folders_in(child)]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        names = ", ".join(c.name for c in candidates)
        raise DataError(f"{root}: several folders hold band folders ({names}); pass the one to use")
    raise DataError(
        f"{root}: no band folders found; expected {', '.join(COMPETITION_BAND_FOLDERS)} "
        "(folders named Band<N> holding one GeoTIFF per image), in this folder or one below it"
    )


def _tiffs_by_id(folder: Path) -> dict[str, Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _TIFF_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no .tif files in this folder; every band folder needs one file per image")
    by_id: dict[str, Path] = {}
    for path in files:
        tile_id = tile_id_from_name(path.name)
        if tile_id in by_id:
            raise DataError(
                f"{folder}: {by_id[tile_id].name} and {path.name} have the same tile id {tile_id!r}; "
                "keep one file per image"
            )
        by_id[tile_id] = path
    return by_id


def find_scenes(
    root: str | Path, require_labels: bool, band_folders: list[str] | tuple[str, ...] | None = None
) -> list[Scene]:
    """All images under ``root`` (the folder holding Band<N>/ or its parent), sorted by tile id.

    ``band_folders`` picks folders by name (default: every Band<N> found, in numeric order).
    With ``require_labels`` every image needs a label in ``labels/`` (or phase 1's ``label/``).
    A file present in one band folder and missing from another is an error naming both.
    """
    base = find_band_root(root)
    found = _band_folders_in(base)
    if band_folders is None:
        names = sorted(found, key=lambda n: int(_BAND_FOLDER.match(n).group(1)))
    else:
        names = list(band_folders)
        missing = [n for n in names if n not in found]
        if missing:
            raise DataError(
                f"{base}: band folder(s) {missing} not found (present: {sorted(found)}); "
                "each band needs its own folder of GeoTIFFs"
            )
    files = {name: _tiffs_by_id(found[name]) for name in names}
    all_ids = sorted(set().union(*(set(f) for f in files.values())))
    for tile_id in all_ids:
        holding = [n for n in names if tile_id in files[n]]
        if len(holding) != len(names):
            lacking = [n for n in names if tile_id not in files[n]]
            example = files[holding[0]][tile_id].name
            raise DataError(
                f"{base}: image {tile_id!r} ({example}) is in {', '.join(holding)} but missing from "
                f"{', '.join(lacking)}; add the missing file(s) or remove the image from every band folder"
            )

    labels: dict[str, Path] = {}
    label_folder = next((base / n for n in COMPETITION_LABEL_FOLDERS if (base / n).is_dir()), None)
    if label_folder is not None:
        labels = _tiffs_by_id(label_folder)
    if require_labels:
        if label_folder is None:
            raise DataError(
                f"{base}: no label folder; training data needs {COMPETITION_LABEL_FOLDERS[0]}/ "
                f"(or {COMPETITION_LABEL_FOLDERS[1]}/) with one label GeoTIFF per image"
            )
        unlabelled = [t for t in all_ids if t not in labels]
        if unlabelled:
            raise DataError(
                f"{label_folder}: no label for image(s) {unlabelled[:5]} "
                f"(e.g. {files[names[0]][unlabelled[0]].name}); add them or remove those images"
            )
    return [
        Scene(tile_id, tuple(files[n][tile_id] for n in names), labels.get(tile_id)) for tile_id in all_ids
    ]


def scene_shape(scene: Scene) -> tuple[int, int]:
    """(height, width) of a scene's first band, read from the header only."""
    path = scene.band_paths[0]
    try:
        with rasterio.open(path) as src:
            return src.height, src.width
    except (RasterioError, OSError) as exc:
        raise DataError(f"{path}: cannot read this GeoTIFF ({exc}); is it truncated or not a TIFF?") from None


def read_scene_image(scene: Scene) -> tuple[np.ndarray, dict[str, Any]]:
    """The scene's bands as float32 (C, H, W) in band-folder order, and the first band's profile.

    Any numeric source dtype is accepted; a band's nodata value becomes NaN.
    """
    bands = []
    first_profile: dict[str, Any] = {}
    for path in scene.band_paths:
        data, profile = read_single_band(path)
        if data.dtype.kind not in "iuf":
            raise DataError(f"{path}: pixel type {data.dtype} is not numeric")
        band = data.astype(np.float32)
        nodata = profile.get("nodata")
        if nodata is not None:
            band[data == nodata] = np.nan
        if bands and band.shape != bands[0].shape:
            raise DataError(
                f"{path}: shape {band.shape} differs from {scene.band_paths[0]} {bands[0].shape}; "
                "every band of an image must have the same size"
            )
        bands.append(band)
        first_profile = first_profile or profile
    image = np.stack(bands)
    if np.isnan(image).all():
        raise DataError(f"{scene.band_paths[0]} (image {scene.tile_id}): every pixel is NaN or nodata")
    return image, first_profile


def read_scene_label(scene: Scene) -> np.ndarray:
    """The scene's label as uint8 class indices 0..3 (from the 0/85/170/255 encoding)."""
    if scene.label_path is None:
        raise DataError(f"image {scene.tile_id} ({scene.band_paths[0]}) has no label file")
    data, _ = read_single_band(scene.label_path)
    return encoded_to_index(data, source=str(scene.label_path))


def read_scene(scene: Scene) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Image, label and profile of a labelled scene, checking that their shapes agree."""
    image, profile = read_scene_image(scene)
    mask = read_scene_label(scene)
    if mask.shape != image.shape[1:]:
        raise DataError(
            f"{scene.label_path}: label shape {mask.shape} differs from image shape "
            f"{image.shape[1:]} ({scene.band_paths[0]}); labels must match their image pixel for pixel"
        )
    return image, mask, profile
