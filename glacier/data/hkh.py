"""The HKH Glacier Mapping dataset (Landsat 7): LILA slices, or raw scenes with label polygons.

    source = open_hkh("glacier_data", bands=("blue", "swir1"))  # HkhSlices or HkhScenes
    sample = source[0]  # {"id", "image": float32 (C, H, W) in ``bands`` order,
                        #  "mask": uint8 (H, W): 0 background, 1 clean ice, 2 debris, 255 no data}

Channels are always chosen by band name (``glacier.domain.canonical_band(..., sensor="L7")``),
never by position. HKH has no lake class; fill pixels (``glacier.data.fill``: 0 in every chosen
band, or NaN) are unlabelled (ignore), not background.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from glacier.data.fill import mark_fill, refuse_infinite
from glacier.data.polygons import SceneLabels, read_polygons
from glacier.data.sources import ImageRecord, ImageSource
from glacier.data.tiling import pad_image, pad_mask, tile_offsets
from glacier.domain import HKH_BANDS, HKH_DEFAULT_BANDS, HKH_SENSOR_BANDS, IGNORE_INDEX, canonical_band
from glacier.errors import DataError

CLEAN, DEBRIS = 1, 2  # class indices burnt from the two label layers (glacier.domain.CLASS_NAMES)


def open_hkh(
    src: str | Path, bands: tuple[str, ...] = HKH_DEFAULT_BANDS, swap_labels: bool = False
) -> HkhSlices | HkhScenes:
    """The HKH source in ``src``: ``glacier_data/``, its ``slices/`` (or a ``splits/<name>/``)
    folder, or raw scenes (``raster_data/`` + ``vector_data/``). ``swap_labels`` reads the
    clean-ice labels as debris and the debris labels as clean ice (mask channels or polygon
    layers given the other way round)."""
    band_indices(bands, HKH_BANDS, "HKH")  # a band HKH does not have fails before any reading
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src}: folder not found (expected HKH glacier_data/, its slices/, or raw scenes)")
    for folder in (src / "slices", src):
        if HkhSlices.holds(folder):
            return HkhSlices(folder, bands, swap_labels)
    if HkhScenes.holds(src):
        return HkhScenes(src, bands, swap_labels)
    raise DataError(
        f"{src}: not an HKH dataset folder; expected slices/slice_S_img_N.npy + slice_S_mask_N.npy, "
        "or raw scenes as raster_data/*.tif with vector_data/clean.* and vector_data/debris.* "
        "(GeoJSON or shapefile)"
    )


def band_indices(wanted: tuple[str, ...], available: tuple[str, ...], source: str) -> list[int]:
    """0-based positions of ``wanted`` canonical bands among ``available`` ones."""
    missing = [b for b in wanted if b not in available]
    if missing:
        raise DataError(f"{source}: bands {missing} not found; it has {list(available)}")
    return [available.index(b) for b in wanted]


def slice_mask_to_classes(
    mask: np.ndarray, one_hot: bool = False, source: str = "mask", swap: bool = False
) -> np.ndarray:
    """An (H, W, 3) HKH mask -> (H, W) class indices: clean ice 1, debris 2, else background 0.

    Slices masks are (all glacier, clean, debris); the splits' one-hot masks are
    (clean, debris, background). ``swap`` reads the clean and debris channels the other way round.
    """
    if mask.ndim != 3 or mask.shape[2] < 3:
        raise DataError(f"{source}: expected an (H, W, 3) mask, got shape {mask.shape}")
    clean, debris = (mask[..., 0], mask[..., 1]) if one_hot else (mask[..., 1], mask[..., 2])
    if swap:
        clean, debris = debris, clean
    out = np.zeros(mask.shape[:2], dtype=np.uint8)
    out[clean > 0] = CLEAN
    out[debris > 0] = DEBRIS
    return out


class _HkhSource(ImageSource):
    dataset = "hkh"
    bands: tuple[str, ...]

    @property
    def sensor_bands(self) -> tuple[str, ...]:
        return tuple(HKH_SENSOR_BANDS[HKH_BANDS.index(b)] for b in self.bands)


# ------------------------------------------------------------------------------ slices
@dataclass(frozen=True)
class SlicePair:
    image_path: Path
    mask_path: Path
    scene: str
    """The slice's source scene number S: slices of one scene share a cross-validation fold."""
    slice_id: str


class HkhSlices(_HkhSource):
    """LILA slices: ``slice_{S}_img_{N}.npy`` float32 (H, W, 15) channel-last, with
    ``slice_{S}_mask_{N}.npy`` uint8 (H, W, 3); masks in the archive's
    ``splits/{train,dev,test}/`` folders are one-hot (clean, debris, background)."""

    image_pattern = re.compile(r"^slice_(\d+)_img_(\d+)\.npy$")
    mask_name = "slice_{scene}_mask_{number}.npy"
    channels = HKH_BANDS

    def __init__(
        self, folder: str | Path, bands: tuple[str, ...] = HKH_DEFAULT_BANDS, swap_labels: bool = False
    ) -> None:
        self.folder = Path(folder)
        self.bands = tuple(bands)
        self.swap_labels = swap_labels
        self._channels = band_indices(self.bands, self.channels, str(self.folder))
        self.one_hot_masks = "splits" in self.folder.resolve().parts
        self._verify()
        self.pairs = sorted(self._list_pairs(), key=lambda p: (int(p.scene), p.slice_id))

    @classmethod
    def holds(cls, folder: Path) -> bool:
        """Whether ``folder`` holds slice images."""
        return folder.is_dir() and any(cls.image_pattern.match(p.name) for p in folder.iterdir())

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        image = self._load_image(pair.image_path)
        mask = self._load_mask(pair.mask_path, image.shape[1:])
        mask[np.isnan(image).any(axis=0)] = IGNORE_INDEX
        return {"id": pair.slice_id, "image": image, "mask": mask}

    def record(self, index: int) -> ImageRecord:
        pair = self.pairs[index]
        height, width = self._load_npy(pair.image_path).shape[:2]
        source = pair.image_path.relative_to(self.folder).as_posix()
        return ImageRecord(pair.slice_id, f"scene_{pair.scene}", source, int(height), int(width))

    def _list_pairs(self) -> list[SlicePair]:
        pairs = []
        for path in self.folder.iterdir():
            match = self.image_pattern.match(path.name)
            if match:
                scene, number = match.groups()
                mask = self.folder / self.mask_name.format(scene=scene, number=number)
                pairs.append(SlicePair(path, mask, scene, f"slice_{scene}_{number}"))
        return pairs

    def _verify(self) -> None:
        """One DataError naming what is missing: slice images, or an image's mask."""
        pairs = self._list_pairs()
        if not pairs:
            raise DataError(f"{self.folder}: no slice_S_img_N.npy files")
        lacking = next((p for p in pairs if not p.mask_path.is_file()), None)
        if lacking is not None:
            raise DataError(
                f"{lacking.image_path}: its mask {lacking.mask_path.name} is missing; "
                "every slice image needs its mask"
            )

    @staticmethod
    def _load_npy(path: Path) -> np.ndarray:
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read this .npy file ({exc}); is it truncated?") from None

    def _load_image(self, path: Path) -> np.ndarray:
        """The chosen channels as float32 (C, H, W)."""
        image = self._load_npy(path)
        if image.ndim != 3 or image.shape[2] != len(self.channels):
            raise DataError(f"{path}: expected (H, W, {len(self.channels)}) channel-last, got {image.shape}")
        chosen = np.asarray(image[..., self._channels])
        refuse_infinite(chosen, str(path))
        return mark_fill(np.ascontiguousarray(np.moveaxis(chosen, -1, 0), dtype=np.float32))

    def _load_mask(self, path: Path, shape: tuple[int, ...]) -> np.ndarray:
        mask = slice_mask_to_classes(self._load_npy(path), self.one_hot_masks, str(path), self.swap_labels)
        if mask.shape != tuple(shape):
            raise DataError(f"{path}: mask shape {mask.shape} differs from image {tuple(shape)}")
        return mask


# -------------------------------------------------------------------------- raw scenes
def scene_band_names(path: Path, descriptions: tuple[str | None, ...]) -> tuple[str, ...]:
    """Canonical names of a raw scene's bands, from its band descriptions (Landsat 7 naming)."""
    if not all(descriptions):
        raise DataError(
            f"{path}: bands lack descriptions ({list(descriptions)}); HKH scenes name their bands "
            "(B1, B2, ..., elevation, slope) so channels can be chosen by name"
        )
    return tuple(canonical_band(d, sensor="L7") for d in descriptions)


class HkhScenes(_HkhSource):
    """Raw HKH scenes: ``raster_data/*.tif`` (15 bands named by their descriptions) with label
    polygons ``vector_data/clean.*`` and ``debris.*`` (GeoJSON, or shapefiles through pyshp)
    in any CRS, reprojected and rasterised on each scene's grid.

    ``tiles`` reads one window at a time, so memory stays at one tile whatever a scene's size.
    """

    raster_folder = "raster_data"
    vector_folder = "vector_data"
    raster_suffixes = (".tif", ".tiff")
    vector_suffixes = (".geojson", ".json", ".shp")
    label_layers = (("clean", CLEAN), ("debris", DEBRIS))
    """Label layers in burn order: debris is burnt over clean ice."""

    def __init__(
        self, root: str | Path, bands: tuple[str, ...] = HKH_DEFAULT_BANDS, swap_labels: bool = False
    ) -> None:
        self.root = Path(root)
        self.bands = tuple(bands)
        self.swap_labels = swap_labels
        self._verify()
        self.paths = self._scene_paths()
        swapped = {CLEAN: DEBRIS, DEBRIS: CLEAN} if swap_labels else {CLEAN: CLEAN, DEBRIS: DEBRIS}
        self.layers = [
            (swapped[value], read_polygons(self._vector_path(name))) for name, value in self.label_layers
        ]
        if swap_labels:  # keep debris burnt last, over clean ice, whichever file holds it
            self.layers.reverse()

    @classmethod
    def holds(cls, folder: Path) -> bool:
        """Whether ``folder`` has the raw-scenes layout."""
        return (folder / cls.raster_folder).is_dir() and (folder / cls.vector_folder).is_dir()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The whole scene (for small scenes; ``tiles`` streams large ones)."""
        path = self.paths[index]
        with self._reading(path) as (src, indexes, labels):
            image, mask = self._read_window(src, indexes, labels, Window(0, 0, src.width, src.height))
            return {"id": path.stem, "image": image, "mask": mask, "profile": dict(src.profile)}

    def record(self, index: int) -> ImageRecord:
        path = self.paths[index]
        try:
            with rasterio.open(path) as src:
                height, width = src.height, src.width
        except (RasterioError, OSError) as exc:
            raise DataError(
                f"{path}: cannot read this GeoTIFF ({exc}); is it truncated or not a TIFF?"
            ) from None
        return ImageRecord(path.stem, path.stem, path.relative_to(self.root).as_posix(), height, width)

    def tiles(self, index: int, tile_size: int) -> Iterator[dict[str, Any]]:
        with self._reading(self.paths[index]) as (src, indexes, labels):
            for row, col in tile_offsets(src.height, src.width, tile_size):
                window = Window(col, row, min(tile_size, src.width - col), min(tile_size, src.height - row))
                image, mask = self._read_window(src, indexes, labels, window)
                yield {
                    "row": row,
                    "col": col,
                    "image": pad_image(image, tile_size),
                    "mask": pad_mask(mask, tile_size),
                }

    # ------------------------------------------------------------------------ layout
    def _scene_paths(self) -> list[Path]:
        folder = self.root / self.raster_folder
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in self.raster_suffixes)

    def _vector_path(self, layer: str) -> Path | None:
        candidates = [self.root / self.vector_folder / f"{layer}{suffix}" for suffix in self.vector_suffixes]
        return next((path for path in candidates if path.is_file()), None)

    def _verify(self) -> None:
        """One DataError naming what is missing: the folders, the scenes or a label layer."""
        if not self.holds(self.root):
            raise DataError(
                f"{self.root}: raw HKH scenes need {self.raster_folder}/*.tif and "
                f"{self.vector_folder}/clean.* + debris.* label polygons"
            )
        missing = [name for name, _ in self.label_layers if self._vector_path(name) is None]
        if missing:
            files = ", ".join(f"no {n}.geojson or {n}.shp" for n in missing)
            raise DataError(
                f"{self.root / self.vector_folder}: {files}; raw HKH scenes need clean and debris polygons"
            )
        if not self._scene_paths():
            raise DataError(f"{self.root / self.raster_folder}: no .tif scenes")

    # ---------------------------------------------------------------------- rasters
    @contextmanager
    def _reading(self, path: Path) -> Iterator[tuple[Any, list[int], SceneLabels]]:
        """The open scene, the 1-based band numbers of ``bands`` and its label polygons."""
        try:
            with rasterio.open(path) as src:
                if src.crs is None:
                    raise DataError(
                        f"{path}: the raster has no CRS, so the label polygons cannot be placed on it; "
                        "HKH scenes are georeferenced GeoTIFFs (set the CRS with gdal_edit.py -a_srs)"
                    )
                names = scene_band_names(path, tuple(src.descriptions))
                indexes = [i + 1 for i in band_indices(self.bands, names, str(path))]
                yield src, indexes, SceneLabels(self.layers, src.crs, tuple(src.bounds))
        except RasterioError as exc:
            raise DataError(
                f"{path}: cannot read this GeoTIFF ({exc}); is it truncated or not a TIFF?"
            ) from None

    @staticmethod
    def _read_window(
        src, indexes: list[int], labels: SceneLabels, window: Window
    ) -> tuple[np.ndarray, np.ndarray]:
        """Image (C, h, w) float32 with fill as NaN, and mask (h, w) uint8, 255 at fill."""
        raw = src.read(indexes, window=window)
        where = (
            f"the {window.height} x {window.width} px window at row {window.row_off}, col {window.col_off}"
        )
        refuse_infinite(raw, f"{src.name} ({where})")
        image = raw.astype(np.float32)
        if src.nodata is not None:
            image[raw == src.nodata] = np.nan
        mark_fill(image)
        transform = window_transform(window, src.transform)
        mask = labels.rasterize(src.window_bounds(window), (window.height, window.width), transform)
        mask[np.isnan(image).any(axis=0)] = IGNORE_INDEX
        return image, mask
