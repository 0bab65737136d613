"""Writing the prepared-dataset format (``glacier.data.prepared_format``) from a source dataset.

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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.format import open_memmap
from tqdm.auto import tqdm

from glacier import __version__
from glacier.atomic import atomic_dir
from glacier.data import prepared_format as fmt
from glacier.data.competition import CompetitionScenes
from glacier.data.folds import GroupFolds, group_folds
from glacier.data.hkh import open_hkh
from glacier.data.sources import ImageRecord, ImageSource
from glacier.data.stats import RunningBandStats
from glacier.data.tiling import effective_tile_size, tile_offsets
from glacier.domain import (
    CLASS_NAMES,
    CLASS_VALUES,
    HKH_DEFAULT_BANDS,
    IGNORE_INDEX,
    NUM_CLASSES,
    resolve_bands,
)
from glacier.errors import DataError
from glacier.normalization import BandStats


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


# ------------------------------------------------------------------------------ writer
def prepare_competition(
    src: str | Path, out: str | Path, options: PrepareOptions = PrepareOptions(), progress: bool = True
) -> PrepareSummary:
    """Preprocess a competition Train/ folder (or the unpacked zip holding it) into ``out``."""
    return write_prepared(out, CompetitionScenes(src, require_labels=True), src, options, progress)


def prepare_hkh(
    src: str | Path,
    out: str | Path,
    bands: tuple[str, ...] | list[str] | str | None = None,
    options: PrepareOptions = PrepareOptions(),
    progress: bool = True,
) -> PrepareSummary:
    """Preprocess HKH slices or raw scenes into ``out``, keeping ``bands`` (names, default the five matched)."""
    chosen = resolve_bands(bands, sensor="L7") if bands else HKH_DEFAULT_BANDS
    return write_prepared(out, open_hkh(src, chosen), src, options, progress)


def _check_output(out: Path) -> None:
    # Never replace a folder that is not a prepared dataset (a typo'd --out could be $HOME).
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / fmt.MANIFEST).is_file())):
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
class _Kept:
    """The tiles pass 1 kept, with per-image totals and the folds of the images' groups."""

    tiles: list[_KeptTile]
    dropped: dict[str, int]
    image_counts: np.ndarray
    image_tiles: np.ndarray
    split: GroupFolds


def write_prepared(
    out: str | Path,
    images: ImageSource,
    source: str | Path,
    options: PrepareOptions = PrepareOptions(),
    progress: bool = True,
) -> PrepareSummary:
    """Cut ``images`` into tiles and write the prepared dataset to ``out`` (atomically);
    ``source`` is the input folder as the user named it (the manifest records it)."""
    out = Path(out)
    _check_output(out)
    bands = images.bands
    records = [images.record(i) for i in range(len(images))]
    if not records:
        raise DataError(f"{source}: no images found")
    tile_size = effective_tile_size(options.tile_size, [(r.height, r.width) for r in records])
    kept = _scan_tiles(images, records, tile_size, options, source, progress)
    with atomic_dir(out) as tmp:
        stats = _write_arrays(tmp, images, kept, bands, tile_size, source, progress)
        class_counts = _ints(kept.image_counts.sum(axis=0))
        text = fmt.manifest_text(
            dataset=images.dataset,
            source=str(Path(source).resolve()),
            bands=list(bands),
            sensor_bands=list(images.sensor_bands),
            classes=list(CLASS_NAMES),
            class_values=list(CLASS_VALUES),
            ignore_index=IGNORE_INDEX,
            tile_size=tile_size,
            num_tiles=len(kept.tiles),
            num_folds=options.num_folds,
            stats=stats.to_dict(),
            class_counts=class_counts,
            images=_image_records(records, kept),
            tiles=_tile_records(records, kept),
            options=_options_record(options, kept.dropped),
            created_by=f"glacier {__version__}",
        )
        (tmp / fmt.MANIFEST).write_text(text, encoding="utf-8")
    return PrepareSummary(
        path=out,
        num_images=len(records),
        num_tiles=len(kept.tiles),
        tile_size=tile_size,
        dropped=kept.dropped,
        class_counts=class_counts,
        fold_lines=kept.split.describe(options.num_folds),
    )


def _scan_tiles(
    images: ImageSource,
    records: list[ImageRecord],
    tile_size: int,
    options: PrepareOptions,
    source: str | Path,
    progress: bool,
) -> _Kept:
    """Pass 1: which tiles to keep (with their class counts), how many were dropped why, and
    the folds, stratified on the kept pixels of each group of images."""
    total = sum(len(tile_offsets(r.height, r.width, tile_size)) for r in records)
    tiles: list[_KeptTile] = []
    dropped: dict[str, int] = {}
    image_counts = np.zeros((len(records), NUM_CLASSES), dtype=np.int64)
    image_tiles = np.zeros(len(records), dtype=np.int64)
    with tqdm(total=total, desc="scanning tiles", unit="tile", disable=not progress) as bar:
        for i in range(len(records)):
            for tile in images.tiles(i, tile_size):
                counts, valid, reason = _tile_record(tile["mask"], options)
                if reason is None:
                    tiles.append(_KeptTile(i, tile["row"], tile["col"], counts, valid))
                    image_counts[i] += counts
                    image_tiles[i] += 1
                else:
                    dropped[reason] = dropped.get(reason, 0) + 1
                bar.update()
    if not tiles:
        raise DataError(f"{source}: every tile was dropped ({dropped}); lower --min-valid / --min-glacier")
    with_tiles = np.flatnonzero(image_tiles)
    try:
        split = group_folds(
            [records[i].group for i in with_tiles], image_counts[with_tiles], options.num_folds, options.seed
        )
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    return _Kept(tiles, dropped, image_counts, image_tiles, split)


def _write_arrays(
    folder: Path,
    images: ImageSource,
    kept: _Kept,
    bands: tuple[str, ...],
    tile_size: int,
    source: str | Path,
    progress: bool,
) -> BandStats:
    """Pass 2: stream the kept tiles into ``images.npy`` / ``masks.npy``; return the band
    statistics accumulated on the way."""
    n = len(kept.tiles)
    stats = RunningBandStats(bands)
    keep_set = {(t.image, t.row, t.col) for t in kept.tiles}
    image_arr = open_memmap(
        folder / fmt.IMAGES, mode="w+", dtype=fmt.IMAGE_DTYPE, shape=fmt.image_shape(n, len(bands), tile_size)
    )
    mask_arr = open_memmap(
        folder / fmt.MASKS, mode="w+", dtype=fmt.MASK_DTYPE, shape=fmt.mask_shape(n, tile_size)
    )
    k = 0
    with tqdm(total=n, desc="writing tiles", unit="tile", disable=not progress) as bar:
        for i in map(int, np.flatnonzero(kept.image_tiles)):
            for tile in images.tiles(i, tile_size):
                if (i, tile["row"], tile["col"]) not in keep_set:
                    continue
                image_arr[k] = tile["image"]
                mask_arr[k] = tile["mask"]
                stats.update(tile["image"])
                k += 1
                bar.update()
    if k != n:
        raise DataError(f"{source}: the input changed while it was being read ({k} tiles, expected {n})")
    image_arr.flush()
    mask_arr.flush()
    return stats.result()


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _image_records(records: list[ImageRecord], kept: _Kept) -> list[dict[str, Any]]:
    fold_of = kept.split.fold_of
    return [
        {
            "id": r.id,
            "group": r.group,
            "source": r.source,
            "height": r.height,
            "width": r.width,
            "fold": fold_of.get(r.group),
            "num_tiles": int(kept.image_tiles[i]),
            "class_counts": _ints(kept.image_counts[i]),
        }
        for i, r in enumerate(records)
    ]


def _tile_records(records: list[ImageRecord], kept: _Kept) -> list[dict[str, Any]]:
    fold_of = kept.split.fold_of
    return [
        {
            "image": records[t.image].id,
            "row": t.row,
            "col": t.col,
            "fold": fold_of[records[t.image].group],
            "class_counts": _ints(t.counts),
            "valid_fraction": round(float(t.valid), 6),
        }
        for t in kept.tiles
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
