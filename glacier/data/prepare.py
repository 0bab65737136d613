"""Writing the prepared-dataset format (docs/ARCHITECTURE.md): ``images.npy``, ``masks.npy``, ``manifest.json``.

    summary = prepare_competition("Train", "prep/competition")
    summary = prepare_hkh("glacier_data", "prep/hkh", bands=("blue", "green", "red", "swir1", "tir"))
    print(summary.text())

Each source image is cut into T x T tiles (edge remainders padded with NaN / ignore). Two
passes over the source: the first decides which tiles to keep (filters) and so how many
there are; the second streams the kept tiles into ``.npy`` memmaps one at a time while
accumulating the band statistics, so memory does not grow with the dataset. Everything is
built in a temporary folder that replaces the output only on success, and the same input
gives byte-identical output (no timestamps).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.format import open_memmap
from tqdm.auto import tqdm

from glacier import __version__
from glacier.atomic import atomic_dir
from glacier.data import competition, hkh
from glacier.data.folds import assign_folds, describe_folds
from glacier.data.stats import RunningBandStats
from glacier.data.tiling import cut_tile, effective_tile_size, ignore_no_data, tile_offsets
from glacier.domain import (
    CLASS_NAMES,
    CLASS_VALUES,
    COMPETITION_BANDS,
    COMPETITION_SENSOR_BANDS,
    HKH_BANDS,
    HKH_DEFAULT_BANDS,
    HKH_SENSOR_BANDS,
    IGNORE_INDEX,
    NUM_CLASSES,
    resolve_bands,
)
from glacier.errors import DataError
from glacier.normalization import BandStats

FORMAT = "glacier-prepared"
FORMAT_VERSION = 1
TileIterator = Iterator[tuple[int, int, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class PrepareOptions:
    """How images are cut, filtered and split into folds."""

    tile_size: int = 512
    num_folds: int = 5
    seed: int = 0
    min_valid: float = 0.0
    """Drop tiles whose labelled (non-ignore) share of the tile is below this."""
    min_glacier: float = 0.0
    """Drop tiles whose glacier (clean + debris) share of labelled pixels is below this."""

    def __post_init__(self) -> None:
        if self.tile_size < 8:
            raise DataError(f"--tile-size must be at least 8, got {self.tile_size}")
        for name in ("min_valid", "min_glacier"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise DataError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")


@dataclass(frozen=True)
class SourceImage:
    """One input image: where it came from, its size, and how to cut it into tiles."""

    id: str
    group: str
    """Images of one group share a fold (an image, or the scene HKH slices were cut from)."""
    source: str
    height: int
    width: int
    tiles: Callable[[int], TileIterator]
    """tile_size -> (row, col, image (C, T, T) float32, mask (T, T) uint8) for every tile."""


@dataclass
class PrepareSummary:
    """What ``prepare_*`` wrote, for the end-of-run summary."""

    path: Path
    num_images: int
    num_tiles: int
    tile_size: int
    dropped: dict[str, int]
    class_counts: list[int]
    fold_lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        labelled = max(sum(self.class_counts), 1)
        shares = ", ".join(
            f"{name} {100 * n / labelled:.2f}%"
            for name, n in zip(CLASS_NAMES, self.class_counts, strict=True)
        )
        dropped = ", ".join(f"{n} {why}" for why, n in self.dropped.items() if n) or "none"
        return "\n".join(
            [
                f"prepared {self.num_tiles} tiles of {self.tile_size} px from {self.num_images} images -> {self.path}",
                f"dropped tiles: {dropped}",
                f"class shares (labelled pixels): {shares}",
                *self.fold_lines,
            ]
        )


# ------------------------------------------------------------------------------ sources
def _cut_tiles(image: np.ndarray, mask: np.ndarray, tile_size: int) -> TileIterator:
    """Every tile of an image read whole (edge tiles padded)."""
    for row, col in tile_offsets(*mask.shape, tile_size):
        yield (row, col, *cut_tile(image, mask, row, col, tile_size))


def competition_images(src: str | Path) -> list[SourceImage]:
    """The labelled images of a competition Train/ folder as tile sources."""
    scenes = competition.find_scenes(src, require_labels=True)
    base = competition.find_band_root(src)

    def tiles_of(scene: competition.Scene) -> Callable[[int], TileIterator]:
        def tiles(tile_size: int) -> TileIterator:
            image, mask, _ = competition.read_scene(scene)
            return _cut_tiles(image, ignore_no_data(image, mask), tile_size)

        return tiles

    return [
        SourceImage(
            s.tile_id,
            s.tile_id,
            s.band_paths[0].relative_to(base).as_posix(),
            *competition.scene_shape(s),
            tiles_of(s),
        )
        for s in scenes
    ]


def hkh_images(src: str | Path, bands: tuple[str, ...]) -> list[SourceImage]:
    """HKH slices or raw scenes as tile sources, with channels ``bands`` (canonical names)."""
    layout = hkh.detect_layout(src)
    if layout.kind == "slices":
        pairs = hkh.find_slices(layout.folder)

        def slice_tiles(pair: hkh.SlicePair) -> Callable[[int], TileIterator]:
            def tiles(tile_size: int) -> TileIterator:
                return _cut_tiles(*hkh.read_slice(pair, bands, layout.one_hot_masks), tile_size)

            return tiles

        return [
            SourceImage(
                p.slice_id,
                f"scene_{p.scene}",
                p.image_path.relative_to(layout.folder).as_posix(),
                *hkh.slice_shape(p),
                slice_tiles(p),
            )
            for p in pairs
        ]

    layers = hkh.read_label_layers(layout.folder)
    sources = []
    for path in hkh.find_raw_scenes(layout.folder):

        def scene_tiles(tile_size: int, path: Path = path) -> TileIterator:
            return hkh.iter_raw_scene_tiles(path, bands, layers, tile_size)

        sources.append(
            SourceImage(
                path.stem,
                path.stem,
                path.relative_to(layout.folder).as_posix(),
                *hkh.raw_scene_shape(path),
                scene_tiles,
            )
        )
    return sources


# ------------------------------------------------------------------------------ writer
def prepare_competition(
    src: str | Path, out: str | Path, options: PrepareOptions = PrepareOptions(), progress: bool = True
) -> PrepareSummary:
    """Preprocess a competition Train/ folder (or the unpacked zip holding it) into ``out``."""
    return write_prepared(
        out,
        competition_images(src),
        dataset="competition",
        source=src,
        bands=COMPETITION_BANDS,
        sensor_bands=COMPETITION_SENSOR_BANDS,
        options=options,
        progress=progress,
    )


def prepare_hkh(
    src: str | Path,
    out: str | Path,
    bands: tuple[str, ...] | list[str] | str | None = None,
    options: PrepareOptions = PrepareOptions(),
    progress: bool = True,
) -> PrepareSummary:
    """Preprocess HKH slices or raw scenes into ``out``, keeping ``bands`` (names, default the five matched)."""
    chosen = resolve_bands(bands, sensor="L7") if bands else HKH_DEFAULT_BANDS
    hkh.band_indices(chosen, HKH_BANDS, "HKH")  # a band HKH does not have fails before any reading
    sensor = tuple(HKH_SENSOR_BANDS[HKH_BANDS.index(b)] for b in chosen)
    return write_prepared(
        out,
        hkh_images(src, chosen),
        dataset="hkh",
        source=src,
        bands=chosen,
        sensor_bands=sensor,
        options=options,
        progress=progress,
    )


def _check_output(out: Path) -> None:
    # Never replace a folder that is not a prepared dataset (a typo'd --out could be $HOME).
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise DataError(f"{out}: exists and is not a prepared dataset; choose a new or empty --out folder")


def _tile_record(mask: np.ndarray, options: PrepareOptions) -> tuple[np.ndarray, float, str | None]:
    """Class counts, valid fraction and the reason to drop the tile (None to keep it)."""
    counts = np.bincount(mask.ravel(), minlength=256)[:NUM_CLASSES]
    labelled = int(counts.sum())
    valid = labelled / mask.size
    glacier = (counts[1] + counts[2]) / max(labelled, 1)
    if labelled == 0:
        return counts, valid, "without labelled pixels"
    if valid < options.min_valid:
        return counts, valid, f"below --min-valid {options.min_valid}"
    if glacier < options.min_glacier:
        return counts, valid, f"below --min-glacier {options.min_glacier}"
    return counts, valid, None


class _KeptTile(NamedTuple):
    image: int
    """Index into the source images."""
    row: int
    col: int
    counts: np.ndarray
    valid: float


@dataclass
class _Split:
    """The folds of the kept tiles: per group (images that must share a fold), with the
    per-group and per-image class counts they are stratified on."""

    groups: list[str]
    group_counts: np.ndarray
    fold_of: dict[str, int]
    image_counts: np.ndarray
    image_tiles: np.ndarray


def write_prepared(
    out: str | Path,
    images: list[SourceImage],
    *,
    dataset: str,
    source: str | Path,
    bands: tuple[str, ...],
    sensor_bands: tuple[str, ...],
    options: PrepareOptions,
    progress: bool = True,
) -> PrepareSummary:
    """Cut ``images`` into tiles and write the prepared dataset to ``out`` (atomically)."""
    out = Path(out)
    _check_output(out)
    if not images:
        raise DataError(f"{source}: no images found")
    tile_size = effective_tile_size(options.tile_size, [(im.height, im.width) for im in images])
    kept, dropped = _scan_tiles(images, tile_size, options, source, progress)
    split = _split_folds(images, kept, options, source)
    with atomic_dir(out) as tmp:
        stats = _write_arrays(tmp, images, kept, split, bands, tile_size, source, progress)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dataset": dataset,
            "source": str(Path(source).resolve()),
            "bands": list(bands),
            "sensor_bands": list(sensor_bands),
            "classes": list(CLASS_NAMES),
            "class_values": list(CLASS_VALUES),
            "ignore_index": IGNORE_INDEX,
            "tile_size": tile_size,
            "num_tiles": len(kept),
            "num_folds": options.num_folds,
            "stats": stats.to_dict(),
            "class_counts": _ints(split.image_counts.sum(axis=0)),
            "images": _image_records(images, split),
            "tiles": _tile_records(images, kept, split),
            "options": _options_record(options, dropped),
            "created_by": f"glacier {__version__}",
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")

    return PrepareSummary(
        path=out,
        num_images=len(images),
        num_tiles=len(kept),
        tile_size=tile_size,
        dropped=dropped,
        class_counts=list(manifest["class_counts"]),
        fold_lines=describe_folds(
            np.array([split.fold_of[g] for g in split.groups]), split.group_counts, options.num_folds
        ),
    )


def _scan_tiles(
    images: list[SourceImage], tile_size: int, options: PrepareOptions, source: str | Path, progress: bool
) -> tuple[list[_KeptTile], dict[str, int]]:
    """Pass 1: which tiles to keep (with their class counts), and how many were dropped why."""
    total = sum(len(tile_offsets(im.height, im.width, tile_size)) for im in images)
    kept: list[_KeptTile] = []
    dropped: dict[str, int] = {}
    with tqdm(total=total, desc="scanning tiles", unit="tile", disable=not progress) as bar:
        for i, im in enumerate(images):
            for row, col, _, mask in im.tiles(tile_size):
                counts, valid, reason = _tile_record(mask, options)
                if reason is None:
                    kept.append(_KeptTile(i, row, col, counts, valid))
                else:
                    dropped[reason] = dropped.get(reason, 0) + 1
                bar.update()
    if not kept:
        raise DataError(f"{source}: every tile was dropped ({dropped}); lower --min-valid / --min-glacier")
    return kept, dropped


def _split_folds(
    images: list[SourceImage], kept: list[_KeptTile], options: PrepareOptions, source: str | Path
) -> _Split:
    """Folds by group, stratified on the kept pixels of each group."""
    groups = sorted({images[t.image].group for t in kept})
    group_index = {g: k for k, g in enumerate(groups)}
    group_counts = np.zeros((len(groups), NUM_CLASSES), dtype=np.int64)
    image_counts = np.zeros((len(images), NUM_CLASSES), dtype=np.int64)
    image_tiles = np.zeros(len(images), dtype=np.int64)
    for t in kept:
        group_counts[group_index[images[t.image].group]] += t.counts
        image_counts[t.image] += t.counts
        image_tiles[t.image] += 1
    try:
        group_folds = assign_folds(group_counts, options.num_folds, options.seed)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    fold_of = {g: int(group_folds[k]) for g, k in group_index.items()}
    return _Split(groups, group_counts, fold_of, image_counts, image_tiles)


def _write_arrays(
    folder: Path,
    images: list[SourceImage],
    kept: list[_KeptTile],
    split: _Split,
    bands: tuple[str, ...],
    tile_size: int,
    source: str | Path,
    progress: bool,
) -> BandStats:
    """Pass 2: stream the kept tiles into ``images.npy`` / ``masks.npy``; return the band
    statistics accumulated on the way."""
    n = len(kept)
    stats = RunningBandStats(bands)
    keep_set = {(t.image, t.row, t.col) for t in kept}
    image_arr = open_memmap(
        folder / "images.npy", mode="w+", dtype=np.float32, shape=(n, len(bands), tile_size, tile_size)
    )
    mask_arr = open_memmap(folder / "masks.npy", mode="w+", dtype=np.uint8, shape=(n, tile_size, tile_size))
    k = 0
    with tqdm(total=n, desc="writing tiles", unit="tile", disable=not progress) as bar:
        for i, im in enumerate(images):
            if not split.image_tiles[i]:
                continue
            for row, col, image, mask in im.tiles(tile_size):
                if (i, row, col) not in keep_set:
                    continue
                image_arr[k] = image
                mask_arr[k] = mask
                stats.update(image)
                k += 1
                bar.update()
    if k != n:
        raise DataError(f"{source}: the input changed while it was being read ({k} tiles, expected {n})")
    image_arr.flush()
    mask_arr.flush()
    return stats.result()


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _image_records(images: list[SourceImage], split: _Split) -> list[dict[str, Any]]:
    return [
        {
            "id": im.id,
            "group": im.group,
            "source": im.source,
            "height": im.height,
            "width": im.width,
            "fold": split.fold_of.get(im.group),
            "num_tiles": int(split.image_tiles[i]),
            "class_counts": _ints(split.image_counts[i]),
        }
        for i, im in enumerate(images)
    ]


def _tile_records(images: list[SourceImage], kept: list[_KeptTile], split: _Split) -> list[dict[str, Any]]:
    return [
        {
            "image": images[t.image].id,
            "row": t.row,
            "col": t.col,
            "fold": split.fold_of[images[t.image].group],
            "class_counts": _ints(t.counts),
            "valid_fraction": round(float(t.valid), 6),
        }
        for t in kept
    ]


def _options_record(options: PrepareOptions, dropped: dict[str, int]) -> dict[str, Any]:
    return {
        "tile_size_requested": options.tile_size,
        "num_folds": options.num_folds,
        "seed": options.seed,
        "min_valid": options.min_valid,
        "min_glacier": options.min_glacier,
        "dropped_tiles": dropped,
    }
