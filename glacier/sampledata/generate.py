"""Generate the whole sample-data tree: competition Train/Test and HKH slices and scenes.

Every image draws from its own random stream, ``default_rng([seed, stream, index])``, so a
seed fixes every array, and the first N images are the same whatever the total count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

from glacier.atomic import atomic_dir
from glacier.data.fill import find_fill
from glacier.domain import CLASS_NAMES, NUM_CLASSES
from glacier.errors import ConfigError, DataError
from glacier.outputs import OutputFolder, files_under, require_kind
from glacier.sampledata.hkh import make_hkh_scene, slice_scene
from glacier.sampledata.labels import hand_drawn_labels
from glacier.sampledata.nodata import competition_fill
from glacier.sampledata.regions import COMPETITION_TEST, COMPETITION_TRAIN, Region
from glacier.sampledata.scene import PIXEL_M, make_scene
from glacier.sampledata.sensors import competition_bands
from glacier.sampledata.spectra import observe
from glacier.sampledata.writers import (
    GEOGRAPHIC_CRS,
    label_polygons,
    slice_feature,
    write_competition_image,
    write_feature_collection,
    write_hkh_raw_scene,
)

MIN_SIZE = 32
_TRAIN, _TEST, _HKH_SLICES, _HKH_RAW = 0, 1, 2, 3  # random stream per dataset
_FILL = 1  # sub-stream of a competition image for its zero fill
_TRAIN_CRS, _TEST_CRS = "EPSG:32645", "EPSG:32644"  # the test set is another region
_SLICE_CRS = "EPSG:32643"  # the CRS of the real slices.geojson
_RAW_CRSS = ("EPSG:32644", "EPSG:32645")
HKH_CLASS_NAMES = ("background", "clean", "debris")


@dataclass
class DatasetSummary:
    """What one part of the sample data holds."""

    name: str
    path: Path
    count: int
    shape: tuple[int, ...]
    class_names: tuple[str, ...]
    class_counts: np.ndarray
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def class_shares(self) -> np.ndarray:
        return self.class_counts / max(int(self.class_counts.sum()), 1)

    def format(self) -> str:
        shares = ", ".join(f"{n} {s:.2%}" for n, s in zip(self.class_names, self.class_shares, strict=True))
        notes = "".join(f", {k} {v}" for k, v in self.notes.items())
        size = " x ".join(str(s) for s in self.shape)
        return f"{self.name}: {self.count} x {size}{notes}\n    classes: {shares}"


@dataclass
class SampleDataSummary:
    """The written tree and a summary of each dataset in it."""

    out: Path
    datasets: list[DatasetSummary]

    def format(self) -> str:
        return "\n".join([f"sample data written to {self.out}", *(d.format() for d in self.datasets)])


def _validate(images: int, size: int, test_images: int, hkh_slices: int, hkh_slice_size: int,
              hkh_scenes: int, hkh_scene_shape: tuple[int, int]) -> None:  # fmt: skip
    if size < MIN_SIZE or size > 4096:
        raise ConfigError(f"size must be {MIN_SIZE}..4096 px (the real images are 512), got {size}")
    if hkh_slice_size < MIN_SIZE or hkh_slice_size > 4096:
        raise ConfigError(
            f"HKH slice size must be {MIN_SIZE}..4096 px (the real slices are 512), got {hkh_slice_size}"
        )
    if images < 1:
        raise ConfigError(f"images must be at least 1, got {images}")
    for name, value in (("test images", test_images), ("HKH slices", hkh_slices), ("HKH scenes", hkh_scenes)):
        if value < 0:
            raise ConfigError(f"{name} must be 0 or more, got {value}")
    if min(hkh_scene_shape) < MIN_SIZE:
        raise ConfigError(f"HKH scene shape must be at least {MIN_SIZE} px per side, got {hkh_scene_shape}")


@dataclass
class CompetitionImage:
    """One generated competition image: what is written, and the surface it was drawn from."""

    bands: np.ndarray
    """(5, H, W) float32, zero where ``fill``."""
    labels: np.ndarray
    """(H, W) class indices as a digitiser drew them (glacier/sampledata/labels.py), 0 in fill."""
    surface: np.ndarray
    """(H, W) class indices of the true surface, 0 in fill: what a perfect model would predict."""
    fill: np.ndarray


def _competition_image(
    rng: np.random.Generator, size: int, seed: int, stream: int, position: int, region: Region
) -> CompetitionImage:
    """Image ``position`` of a competition split; ``rng`` is its stream and goes on to place it."""
    scene = make_scene(rng, (size, size), region)
    bands = competition_bands(observe(rng, scene))
    labels = hand_drawn_labels(rng, scene.truth, scene.scale)
    # Fill draws from its own stream: the scene, labels and positions stay as they were.
    fill = competition_fill(np.random.default_rng([seed, stream, position, _FILL]), (size, size))
    bands[:, fill] = 0.0
    labels[fill] = 0
    surface = scene.truth.astype(np.uint8)
    surface[fill] = 0
    return CompetitionImage(bands, labels, surface, fill)


def held_out_images(test_images: int, size: int = 128, seed: int = 0) -> list[CompetitionImage]:
    """The held-out Test images ``generate_sample_data(out, size=size, seed=seed,
    test_images=test_images)`` writes (whatever its ``images``), in id order, with their true
    surface: what separates the label noise (a digitiser's outline, which no model can
    predict) from a model's own errors. Regenerated, not read."""
    return [
        _competition_image(np.random.default_rng([seed, _TEST, position]), size, seed, _TEST, position, COMPETITION_TEST)
        for position in range(test_images)
    ]  # fmt: skip


def _competition_split(
    out: Path, split: str, label_dir: Path, ids: range, size: int, seed: int, stream: int, region: Region, crs: str,
    write_labels_beside: bool,
) -> DatasetSummary:  # fmt: skip
    """Generate and write one competition split; labels go to ``label_dir``."""
    split_dir = out / "competition" / split
    counts = np.zeros(NUM_CLASSES, np.int64)
    with_lake = with_fill = fill_pixels = 0
    width = max(3, len(str(ids.stop - 1)))
    for position, number in enumerate(ids):
        rng = np.random.default_rng([seed, stream, position])
        image = _competition_image(rng, size, seed, stream, position, region)
        bands, labels, fill = image.bands, image.labels, image.fill
        with_fill += bool(fill.any())
        fill_pixels += int(fill.sum())
        # Images lie on a loose grid within the region's UTM zone.
        x0 = 350_000 + (position % 8) * size * PIXEL_M * 1.5 + rng.uniform(0, 5_000)
        y0 = 3_150_000 - (position // 8) * size * PIXEL_M * 1.5 - rng.uniform(0, 5_000)
        profile = {"crs": crs, "transform": from_origin(round(x0, -1), round(y0, -1), PIXEL_M, PIXEL_M)}
        write_competition_image(split_dir, label_dir, f"img{number:0{width}d}", bands, labels, profile)
        counts += np.bincount(labels.ravel(), minlength=NUM_CLASSES)
        with_lake += bool((labels == 3).any())
    where = "labels/" if write_labels_beside else f"labels in {label_dir.name}/"
    return DatasetSummary(
        f"competition {split} ({where})", split_dir, len(ids), (size, size), CLASS_NAMES, counts,
        {"images with a lake": with_lake, "images with zero fill": with_fill,
         "fill": f"{fill_pixels / max(len(ids) * size * size, 1):.1%}"},
    )  # fmt: skip


def _hkh_slices(out: Path, count: int, size: int, seed: int) -> DatasetSummary:
    """Slices cut from 2 x 2-slice scenes, with ``slices.geojson``. No data is NaN; every
    second scene stores the area outside its footprint as 0 (zero fill), as some real
    slices do, and only its scan-line gaps as NaN."""
    slice_dir = out / "hkh" / "slices"
    slice_dir.mkdir(parents=True, exist_ok=True)
    features, counts, nan_values, fill_pixels, written = [], np.zeros(3, np.int64), 0, 0, 0
    for k in range(math.ceil(count / 4)):
        rng = np.random.default_rng([seed, _HKH_SLICES, k])
        origin = (round(rng.uniform(300_000, 700_000), -1), round(rng.uniform(3_000_000, 3_900_000), -1))
        scene = make_hkh_scene(rng, (2 * size, 2 * size), _SLICE_CRS, origin)
        for number, (image, mask, corner) in enumerate(slice_scene(scene, size, zero_outside=k % 2 == 1)):
            if written == count:
                break
            np.save(slice_dir / f"slice_{k + 1}_img_{number:03d}.npy", image)
            np.save(slice_dir / f"slice_{k + 1}_mask_{number:03d}.npy", mask)
            features.append(slice_feature(scene, k + 1, number, image, mask, corner))
            counts += [int((mask[..., 0] == 0).sum()), int(mask[..., 1].sum()), int(mask[..., 2].sum())]
            nan_values += int(np.isnan(image).sum())
            fill_pixels += int(find_fill(image.transpose(2, 0, 1)).sum())
            written += 1
    write_feature_collection(
        slice_dir / "slices.geojson", "slices", features, f"urn:ogc:def:crs:EPSG::{_SLICE_CRS.split(':')[1]}"
    )
    nan_share = nan_values / max(written * size * size * 15, 1)
    fill_share = fill_pixels / max(written * size * size, 1)
    return DatasetSummary(
        "hkh slices", slice_dir, written, (size, size, 15), HKH_CLASS_NAMES, counts,
        {"NaN values": f"{nan_share:.1%}", "fill (NaN or zero)": f"{fill_share:.1%}"},
    )  # fmt: skip


def _hkh_raw(out: Path, count: int, shape: tuple[int, int], seed: int) -> DatasetSummary:
    """Raw 15-band scenes in ``raster_data/`` with label polygons in ``vector_data/`` (EPSG:4326)."""
    raster_dir, vector_dir = out / "hkh" / "raster_data", out / "hkh" / "vector_data"
    raster_dir.mkdir(parents=True, exist_ok=True)
    vector_dir.mkdir(parents=True, exist_ok=True)
    clean, debris, counts, names, fill_pixels = [], [], np.zeros(3, np.int64), set(), 0
    for k in range(count):
        rng = np.random.default_rng([seed, _HKH_RAW, k])
        crs = _RAW_CRSS[k % len(_RAW_CRSS)]
        origin = (round(rng.uniform(300_000, 700_000), -1), round(rng.uniform(3_000_000, 3_900_000), -1))
        scene = make_hkh_scene(rng, shape, crs, origin)
        while scene.name in names:  # two scenes drew the same product name
            scene.name = scene.name[:-2] + f"{(int(scene.name[-2:]) % 28) + 1:02d}"
        names.add(scene.name)
        write_hkh_raw_scene(raster_dir, scene)
        clean += label_polygons(scene, 1)
        debris += label_polygons(scene, 2)
        counts += np.bincount(scene.labels.ravel(), minlength=3)
        fill_pixels += int(np.isnan(scene.channels).any(axis=0).sum())
    urn = "urn:ogc:def:crs:OGC:1.3:CRS84"  # EPSG:4326 in longitude, latitude order
    write_feature_collection(vector_dir / "clean.geojson", "clean", clean, urn)
    write_feature_collection(vector_dir / "debris.geojson", "debris", debris, urn)
    return DatasetSummary(
        "hkh raw scenes", raster_dir, count, (15, *shape), HKH_CLASS_NAMES, counts,
        {"polygons": f"{len(clean)} clean + {len(debris)} debris ({GEOGRAPHIC_CRS})",
         "zero fill (edges, SLC-off gaps)": f"{fill_pixels / max(count * shape[0] * shape[1], 1):.1%}"},
    )  # fmt: skip


def generate_sample_data(
    out: str | Path,
    images: int = 25,
    size: int = 128,
    seed: int = 0,
    test_images: int = 5,
    hkh_slices: int = 12,
    hkh_slice_size: int = 128,
    hkh_scenes: int = 2,
    hkh_scene_shape: tuple[int, int] = (260, 300),
    overwrite: bool = False,
) -> SampleDataSummary:
    """Write realistic synthetic competition and HKH data under ``out``; return a summary.

    Layout: ``competition/Train/{Band1..Band5,labels}/imgNNN.tif``,
    ``competition/Test/{Band1..Band5}/imgNNN.tif`` (held-out region; ids continue after
    the training ids) with their truth in ``competition/Test_labels/imgNNN.tif``,
    ``hkh/slices/slice_S_{img,mask}_NNN.npy`` + ``slices.geojson``,
    ``hkh/raster_data/LE07_*.tif`` and ``hkh/vector_data/{clean,debris}.geojson``.
    The tree is built in a temporary folder and renamed into place. An existing non-empty
    ``out`` is replaced only with ``overwrite``, and only when it holds nothing but what
    sample-data wrote (its marker lists the files: glacier/outputs.py).
    """
    _validate(images, size, test_images, hkh_slices, hkh_slice_size, hkh_scenes, tuple(hkh_scene_shape))
    out = require_kind(out, "folder", "OUT")
    output = OutputFolder(out, "sample-data")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise DataError(
                f"{out} already exists and is not empty: choose another folder or pass --overwrite"
            )
        output.check_replaceable("OUT")
    with atomic_dir(out) as tmp:
        comp = tmp / "competition"
        datasets = [
            _competition_split(tmp, "Train", comp / "Train" / "labels", range(1, images + 1), size, seed,
                               _TRAIN, COMPETITION_TRAIN, _TRAIN_CRS, True),
        ]  # fmt: skip
        if test_images:
            datasets.append(
                _competition_split(tmp, "Test", comp / "Test_labels", range(images + 1, images + test_images + 1),
                                   size, seed, _TEST, COMPETITION_TEST, _TEST_CRS, False)
            )  # fmt: skip
        if hkh_slices:
            datasets.append(_hkh_slices(tmp, hkh_slices, hkh_slice_size, seed))
        if hkh_scenes:
            datasets.append(_hkh_raw(tmp, hkh_scenes, tuple(hkh_scene_shape), seed))
        output.write_marker(tmp, files_under(tmp))
    for dataset in datasets:  # report the final paths, not the temporary ones
        dataset.path = out / dataset.path.relative_to(tmp)
    return SampleDataSummary(out, datasets)
