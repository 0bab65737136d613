"""The competition layout: ``ROOT/Band1..Band5/<name>.tif`` plus ``ROOT/labels/<name>.tif``.

Files pair across folders by tile id (``glacier.domain.tile_id_from_name``), not by exact
name, so phase-1 names (``Band1/B2_B2_masked_02_07.tif``, ``label/Y_output_resized_02_07.tif``)
pair as well as phase-2 ones (``img001.tif`` everywhere). Bands are read in band-folder order.

    scenes = CompetitionScenes("Train", require_labels=True)
    sample = scenes[0]  # {"id": "001", "image": float32 (C, H, W), NaN = no data,
                        #  "mask": uint8 (H, W) class indices, 255 = no data, "profile": {...}}

``find_scenes`` and ``read_scene_image`` do the same for code that predicts scene by scene.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from glacier.data.fill import mark_fill, refuse_infinite
from glacier.data.raster import check_fits_in_memory, read_single_band
from glacier.data.sources import ImageRecord, ImageSource
from glacier.data.tiling import ignore_no_data
from glacier.domain import (
    COMPETITION_BAND_FOLDERS,
    COMPETITION_BANDS,
    COMPETITION_LABEL_FOLDERS,
    COMPETITION_SENSOR_BANDS,
    encoded_to_index,
    snap_to_class_values,
    tile_id_from_name,
)
from glacier.errors import DataError


@dataclass(frozen=True)
class Scene:
    """One image: a file per band folder (in band order) and, for training data, its label."""

    tile_id: str
    band_paths: tuple[Path, ...]
    label_path: Path | None


class CompetitionScenes(ImageSource):
    """The images of a competition ``Train/`` or ``Test/`` folder, sorted by tile id.

    ``root`` is the folder holding the band folders, or its parent. ``band_folders`` picks
    folders by name (default: Band1..Band5, all of which must be there). With
    ``require_labels`` every image needs a label in ``labels/`` (or phase 1's ``label/``).
    Label values outside 0/85/170/255 are refused, or with ``snap_labels`` moved to the
    nearest class value (``snapped_pixels`` counts them per image).
    """

    dataset = "competition"
    band_folder_pattern = re.compile(r"^band(\d+)$", re.IGNORECASE)
    label_folders = COMPETITION_LABEL_FOLDERS
    suffixes = (".tif", ".tiff")

    def __init__(
        self,
        root: str | Path,
        require_labels: bool = True,
        band_folders: list[str] | tuple[str, ...] | None = None,
        snap_labels: bool = False,
    ) -> None:
        self.root = find_band_root(root)
        self.require_labels = require_labels
        self.snap_labels = snap_labels
        self.snapped_pixels: dict[str, int] = {}
        found = _band_folders_in(self.root)
        if band_folders is None:
            band_folders = sorted(found, key=lambda n: int(self.band_folder_pattern.match(n).group(1)))
            _require_every_band(self.root, band_folders)
        self.band_folders = tuple(band_folders)
        self.label_folder = next(
            (self.root / n for n in self.label_folders if (self.root / n).is_dir()), None
        )
        self._verify(found)
        self.scenes = self._pair()

    def __len__(self) -> int:
        return len(self.scenes)

    def labels_snapped(self) -> int:
        return sum(self.snapped_pixels.values())

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(COMPETITION_BANDS[i] for i in self._folder_positions())

    @property
    def sensor_bands(self) -> tuple[str, ...]:
        return tuple(COMPETITION_SENSOR_BANDS[i] for i in self._folder_positions())

    def _folder_positions(self) -> list[int]:
        unknown = [n for n in self.band_folders if n not in COMPETITION_BAND_FOLDERS]
        if unknown:
            raise DataError(
                f"{self.root}: {', '.join(unknown)} is not a competition band folder "
                f"({', '.join(COMPETITION_BAND_FOLDERS)}), so its band is unknown; move it out of this folder"
            )
        return [COMPETITION_BAND_FOLDERS.index(n) for n in self.band_folders]

    def __getitem__(self, index: int) -> dict[str, Any]:
        scene = self.scenes[index]
        image, profile = self._load_image(scene)
        sample: dict[str, Any] = {"id": scene.tile_id, "image": image, "profile": profile}
        if scene.label_path is not None:
            sample["mask"] = ignore_no_data(image, self._load_mask(scene, image.shape[1:]))
        return sample

    def record(self, index: int) -> ImageRecord:
        """Id, file and size from the headers of every band and the label, compared before
        any pixel is read; an image too large to read whole is refused here."""
        scene = self.scenes[index]
        first = scene.band_paths[0]
        height, width = self._shape(first)
        # The reader holds each band twice (its own dtype, then float32) and the stacked image.
        check_fits_in_memory(first, height * width * 4 * (len(scene.band_paths) + 2))
        for path in scene.band_paths[1:] + ((scene.label_path,) if scene.label_path else ()):
            if self._shape(path) != (height, width):
                raise DataError(
                    f"{path}: size {self._shape(path)} differs from {first} {(height, width)}; "
                    "every band and the label of an image must have the same size"
                )
        return ImageRecord(
            scene.tile_id, scene.tile_id, first.relative_to(self.root).as_posix(), height, width
        )

    # ------------------------------------------------------------------------ layout
    def _files_in(self, folder: Path) -> dict[str, list[Path]]:
        """The folder's GeoTIFFs by tile id (a list, so that _verify can name clashes)."""
        by_id: dict[str, list[Path]] = {}
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in self.suffixes):
            by_id.setdefault(tile_id_from_name(path.name), []).append(path)
        return by_id

    def _verify(self, found: dict[str, Path]) -> None:
        """Check the layout; one DataError names the first thing missing and what to do."""
        missing = [n for n in self.band_folders if n not in found]
        if missing:
            raise DataError(
                f"{self.root}: band folder(s) {missing} not found (present: {sorted(found)}); "
                "each band needs its own folder of GeoTIFFs"
            )
        folders = [found[n] for n in self.band_folders] + ([self.label_folder] if self.label_folder else [])
        self._files = {folder.name: self._files_in(folder) for folder in folders}
        for folder in folders:
            by_id = self._files[folder.name]
            if not by_id:
                raise DataError(f"{folder}: no .tif files in this folder; it needs one GeoTIFF per image")
            clash = next((paths for paths in by_id.values() if len(paths) > 1), None)
            if clash:
                raise DataError(
                    f"{folder}: {clash[0].name} and {clash[1].name} have the same tile id "
                    f"{tile_id_from_name(clash[0].name)!r}; keep one file per image"
                )
        self._verify_pairs([self._files[n] for n in self.band_folders])
        if self.require_labels:
            self._verify_labels()

    def _verify_pairs(self, bands: list[dict[str, list[Path]]]) -> None:
        for tile_id in sorted(set().union(*bands)):
            holding = [n for n, files in zip(self.band_folders, bands, strict=True) if tile_id in files]
            if len(holding) != len(bands):
                lacking = [n for n in self.band_folders if n not in holding]
                example = bands[self.band_folders.index(holding[0])][tile_id][0].name
                raise DataError(
                    f"{self.root}: image {tile_id!r} ({example}) is in {', '.join(holding)} but missing from "
                    f"{', '.join(lacking)}; add the missing file(s) or remove the image from every band folder"
                )

    def _verify_labels(self) -> None:
        if self.label_folder is None:
            raise DataError(
                f"{self.root}: no label folder; training data needs {self.label_folders[0]}/ "
                f"(or {self.label_folders[1]}/) with one label GeoTIFF per image"
            )
        first_band = self._files[self.band_folders[0]]
        unlabelled = [t for t in sorted(first_band) if t not in self._files[self.label_folder.name]]
        if unlabelled:
            raise DataError(
                f"{self.label_folder}: no label for image(s) {unlabelled[:5]} "
                f"(e.g. {first_band[unlabelled[0]][0].name}); add them or remove those images"
            )

    def _pair(self) -> list[Scene]:
        bands = [self._files[n] for n in self.band_folders]
        labels = self._files[self.label_folder.name] if self.label_folder else {}
        return [
            Scene(tile_id, tuple(b[tile_id][0] for b in bands), labels.get(tile_id, [None])[0])
            for tile_id in sorted(bands[0])
        ]

    # ---------------------------------------------------------------------- rasters
    @staticmethod
    def _shape(path: Path) -> tuple[int, int]:
        """(height, width) from the GeoTIFF header only."""
        try:
            with rasterio.open(path) as src:
                return src.height, src.width
        except (RasterioError, OSError) as exc:
            raise DataError(
                f"{path}: cannot read this GeoTIFF ({exc}); is it truncated or not a TIFF?"
            ) from None

    @staticmethod
    def _load_band(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
        """One band as float32 (H, W), its nodata value as NaN; any numeric source dtype."""
        data, profile = read_single_band(path)
        if data.dtype.kind not in "iuf":
            raise DataError(f"{path}: pixel type {data.dtype} is not numeric")
        refuse_infinite(data, str(path))
        band = data.astype(np.float32)
        if profile.get("nodata") is not None:
            band[data == profile["nodata"]] = np.nan
        return band, profile

    @classmethod
    def _load_image(cls, scene: Scene) -> tuple[np.ndarray, dict[str, Any]]:
        """The bands as float32 (C, H, W) in band-folder order, and the first band's profile."""
        bands, profiles = [], []
        for path in scene.band_paths:
            band, profile = cls._load_band(path)
            if bands and band.shape != bands[0].shape:
                raise DataError(
                    f"{path}: shape {band.shape} differs from {scene.band_paths[0]} {bands[0].shape}; "
                    "every band of an image must have the same size"
                )
            bands.append(band)
            profiles.append(profile)
        return mark_fill(np.stack(bands)), profiles[0]

    def _load_mask(self, scene: Scene, shape: tuple[int, ...]) -> np.ndarray:
        """The label as uint8 class indices 0..3 (from the 0/85/170/255 encoding)."""
        data, _ = read_single_band(scene.label_path)
        if self.snap_labels:
            data, self.snapped_pixels[scene.tile_id] = snap_to_class_values(data, str(scene.label_path))
        try:
            mask = encoded_to_index(data, source=str(scene.label_path))
        except DataError as exc:
            raise DataError(f"{exc}; pass --snap-labels to map them to the nearest class value") from None
        if mask.shape != tuple(shape):
            raise DataError(
                f"{scene.label_path}: label shape {mask.shape} differs from image shape "
                f"{tuple(shape)} ({scene.band_paths[0]}); labels must match their image pixel for pixel"
            )
        return mask


def _require_every_band(root: Path, found: list[str]) -> None:
    """Band folders found by themselves must be the competition's full set: the models take
    all five bands, and data without one would only fail later, at training or prediction."""
    missing = [n for n in COMPETITION_BAND_FOLDERS if n not in found]
    if missing and found:
        raise DataError(
            f"{root}: band folder(s) {', '.join(missing)} missing (found {', '.join(found)}); "
            f"competition data has {', '.join(COMPETITION_BAND_FOLDERS)}: restore the missing folder(s)"
        )


def _band_folders_in(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    pattern = CompetitionScenes.band_folder_pattern
    return {p.name: p for p in folder.iterdir() if p.is_dir() and pattern.match(p.name)}


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


def find_scenes(
    root: str | Path, require_labels: bool, band_folders: list[str] | tuple[str, ...] | None = None
) -> list[Scene]:
    """The scenes of ``CompetitionScenes(root, require_labels, band_folders)``, sorted by tile id."""
    return CompetitionScenes(root, require_labels, band_folders).scenes


def read_scene_image(scene: Scene) -> tuple[np.ndarray, dict[str, Any]]:
    """A scene's bands as float32 (C, H, W) in band-folder order (nodata as NaN), and the
    first band's profile (its georeferencing)."""
    return CompetitionScenes._load_image(scene)
