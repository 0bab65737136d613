"""Reading each input layout for ``glacier inspect``: headers of every image, pixels of a sample.

The layouts are the readers' own (``CompetitionScenes``, ``HkhSlices``, ``HkhScenes``), so
inspect sees exactly the files preprocess would read; the pixels are read raw, before the
readers mark fill or refuse a value, because those are what the report is about.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import Affine

from glacier.audit.report import BandTally, Finding, InspectReport
from glacier.data.competition import CompetitionScenes, find_band_root
from glacier.data.fill import find_fill
from glacier.data.hkh import HkhScenes, HkhSlices, scene_band_names, slice_mask_to_classes
from glacier.data.mask_check import MaskCheck
from glacier.data.polygons import SceneLabels
from glacier.data.raster import read_single_band
from glacier.domain import (
    CLASS_NAMES,
    CLASS_VALUES,
    COMPETITION_BAND_FOLDERS,
    COMPETITION_BANDS,
    HKH_BANDS,
    HKH_SENSOR_BANDS,
)
from glacier.errors import DataError

HKH_CLASSES = ("background", "clean", "debris")


def evenly_spaced(count: int, limit: int) -> list[int]:
    """Up to ``limit`` indices spread evenly over 0..count-1 (all of them when count <= limit)."""
    if count <= limit:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, limit)})


def _sampling(read: int, total: int, what: str) -> str:
    return f"all {total} {what} read" if read == total else f"{read} of {total} {what} read, spread evenly"


class _Tallies:
    """Per-band tallies by band name (in first-seen order) and the image-level fill counts."""

    def __init__(self) -> None:
        self.bands: dict[str, BandTally] = {}
        self.fill_pixels = self.pixels = self.images_with_fill = 0

    def add_image(self, names: list[str], raw: list[np.ndarray], nodata: list[float | None], source: str):
        """One image's bands (raw values); returns its fill mask (the one rule, nodata as NaN)."""
        as_float = []
        for band, tag in zip(raw, nodata, strict=True):
            values = band.astype(np.float32)
            if tag is not None:
                values[band == tag] = np.nan
            as_float.append(values)
        fill = find_fill(np.stack(as_float))
        for name, band, tag in zip(names, raw, nodata, strict=True):
            self.bands.setdefault(name, BandTally(name)).add(band, fill, tag, source)
        self.fill_pixels += int(fill.sum())
        self.pixels += fill.size
        self.images_with_fill += bool(fill.any())
        return fill

    def report(
        self, src: Path, layout: str, ids: list[str], sizes: Counter, read: int, sampling: str, **extra
    ):
        return InspectReport(
            src, layout, ids, sizes, read, sampling, list(self.bands.values()),
            self.fill_pixels, self.pixels, self.images_with_fill, **extra,
        )  # fmt: skip


def read_source(src: Path, max_images: int, pixels_per_scene: int) -> InspectReport:
    """The report of whichever layout ``src`` holds (its findings not yet drawn)."""
    for folder in (src / "slices", src):
        if HkhSlices.holds(folder):
            return _hkh_slices(HkhSlices(folder, HKH_BANDS), max_images)
    if HkhScenes.holds(src):
        return _hkh_scenes(HkhScenes(src), max_images, pixels_per_scene)
    try:
        find_band_root(src)
    except DataError as exc:
        raise DataError(
            f"{exc}; glacier inspect also reads HKH slices (slices/slice_S_img_N.npy) and raw scenes "
            "(raster_data/ + vector_data/)"
        ) from None
    return _competition(src, CompetitionScenes(src, require_labels=False), max_images)


def _competition(src: Path, scenes: CompetitionScenes, max_images: int) -> InspectReport:
    records = [scenes.record(i) for i in range(len(scenes))]
    names = [f"{f} ({COMPETITION_BANDS[COMPETITION_BAND_FOLDERS.index(f)]})" for f in scenes.band_folders]
    tallies, labels, at_fill = _Tallies(), Counter(), 0
    chosen = evenly_spaced(len(scenes), max_images)
    for i in chosen:
        scene = scenes.scenes[i]
        read = [read_single_band(path) for path in scene.band_paths]
        fill = tallies.add_image(
            names, [data for data, _ in read], [p.get("nodata") for _, p in read], str(scene.band_paths[0])
        )
        if scene.label_path is not None:
            values = read_single_band(scene.label_path)[0]
            unique, counts = np.unique(values, return_counts=True)
            labels.update({v.item(): int(n) for v, n in zip(unique, counts, strict=True)})
            at_fill += int((values[fill] != CLASS_VALUES[0]).sum()) if values.shape == fill.shape else 0
    has_labels = scenes.label_folder is not None
    named = {_label_name(v): n for v, n in sorted(labels.items())} if has_labels else None
    return tallies.report(
        src, "competition", [r.id for r in records], Counter((r.height, r.width) for r in records),
        len(chosen), _sampling(len(chosen), len(records), "images"), labels=named,
        stray_labels=sorted(((v, n) for v, n in labels.items() if v not in CLASS_VALUES), key=lambda p: -p[1]),
        labelled_at_fill=at_fill,
    )  # fmt: skip


def _label_name(value) -> str:
    names = dict(zip(CLASS_VALUES, CLASS_NAMES, strict=True))
    return f"{value:g} {names[value]}" if value in names else f"{value:g} (stray)"


def _hkh_slices(slices: HkhSlices, max_images: int) -> InspectReport:
    tallies, classes, at_fill = _Tallies(), Counter(), 0
    check = MaskCheck(HKH_BANDS)
    names = [f"{s} ({c})" for s, c in zip(HKH_SENSOR_BANDS, HKH_BANDS, strict=True)]
    chosen = evenly_spaced(len(slices), max_images)
    stray = Counter()
    for i in chosen:
        pair = slices.pairs[i]
        raw = np.moveaxis(np.asarray(np.load(pair.image_path, mmap_mode="r")), -1, 0)
        fill = tallies.add_image(names, list(raw), [None] * len(raw), str(pair.image_path))
        mask = np.load(pair.mask_path, mmap_mode="r")
        stray.update({v.item(): 1 for v in np.unique(mask) if v not in (0, 1)})
        labels = slice_mask_to_classes(np.asarray(mask), slices.one_hot_masks, str(pair.mask_path))
        at_fill += int((labels[fill] > 0).sum())
        classes.update(Counter(dict(zip(*np.unique(labels[~fill], return_counts=True), strict=True))))
        check.update(np.where(fill, np.nan, raw.astype(np.float32)), np.where(fill, 255, labels))
    records = [slices.record(i) for i in range(len(slices))]
    notes = [
        Finding(
            "masks", f"values {v:g} (not 0/1) in {n} slice mask(s)", "read as labelled (any value above 0)"
        )
        for v, n in sorted(stray.items())
    ]
    return tallies.report(
        slices.folder, "hkh slices", [r.id for r in records], Counter((r.height, r.width) for r in records),
        len(chosen), _sampling(len(chosen), len(records), "slices"),
        labels={HKH_CLASSES[int(c)]: int(n) for c, n in sorted(classes.items())},
        mask_check=check.result(), labelled_at_fill=at_fill, layout_findings=notes,
    )  # fmt: skip


def _hkh_scenes(scenes: HkhScenes, max_images: int, pixels_per_scene: int) -> InspectReport:
    tallies, classes, at_fill, sizes, notes = _Tallies(), Counter(), 0, Counter(), []
    check: MaskCheck | None = None
    chosen = set(evenly_spaced(len(scenes.paths), max_images))
    for i, path in enumerate(scenes.paths):
        with rasterio.open(path) as src:
            sizes[(src.height, src.width)] += 1
            if src.crs is None:
                notes.append(
                    Finding(path.name, "no CRS: the label polygons cannot be placed on it",
                            "preprocess refuses it: set its CRS (gdal_edit.py -a_srs EPSG:...)")
                )  # fmt: skip
                continue
            if i not in chosen:
                continue
            sensor = tuple(src.descriptions)
            canonical = scene_band_names(path, sensor)
            names = [f"{s} ({c})" for s, c in zip(sensor, canonical, strict=True)]
            raw, labels = _decimated(src, scenes, pixels_per_scene)
            fill = tallies.add_image(names, list(raw), [src.nodata] * len(raw), str(path))
            at_fill += int((labels[fill] > 0).sum())
            classes.update(Counter(dict(zip(*np.unique(labels[~fill], return_counts=True), strict=True))))
            check = check or MaskCheck(canonical)
            if canonical == check.bands:  # the check reads bands by position
                check.update(np.where(fill, np.nan, raw.astype(np.float32)), np.where(fill, 255, labels))
    return tallies.report(
        scenes.root, "hkh raw scenes", [p.stem for p in scenes.paths], sizes, len(chosen),
        _sampling(len(chosen), len(scenes.paths), "scenes") + f", each decimated to about {pixels_per_scene:,} px",
        labels={HKH_CLASSES[int(c)]: int(n) for c, n in sorted(classes.items())},
        mask_check=None if check is None else check.result(), labelled_at_fill=at_fill, layout_findings=notes,
    )  # fmt: skip


def _decimated(src, scenes: HkhScenes, pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Every band of a scene read at every k-th pixel (nearest), and its labels on that grid."""
    step = max(1, math.ceil(math.sqrt(src.height * src.width / pixels)))
    shape = (math.ceil(src.height / step), math.ceil(src.width / step))
    raw = src.read(out_shape=(src.count, *shape), resampling=Resampling.nearest)
    transform = src.transform @ Affine.scale(src.width / shape[1], src.height / shape[0])
    labels = SceneLabels(scenes.layers, src.crs, tuple(src.bounds)).rasterize(
        tuple(src.bounds), shape, transform
    )
    return raw, labels
