"""Writing the prepared-dataset format (``glacier.data.prepared_format``) from a source dataset.

    summary = prepare_competition("Train", "prep/competition")
    summary = prepare_hkh("glacier_data", "prep/hkh", bands=("blue", "green", "red", "swir1", "tir"))
    print(summary.text())

Each source image is cut into T x T tiles (edge remainders padded with NaN / ignore); fill
pixels (``glacier.data.fill``) arrive as NaN with the ignore label. Two passes over the
source: the first decides which tiles to keep (filters; a tile without a valid pixel is
always dropped), accumulates the band statistics over their valid pixels and, for HKH, the
clean / debris label check (``glacier.data.mask_check``), which fails before anything is
written. The second streams the kept tiles, standardised with those statistics, into the
``.npy`` files with plain writes, so memory does not grow with the dataset and a full disk
is a clear error (``glacier.data.prepare_output``). Everything is built in a temporary
folder that replaces the output only on success, and the same input gives byte-identical
output (no timestamps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from glacier import __version__
from glacier.atomic import atomic_dir
from glacier.data import prepared_format as fmt
from glacier.data.competition import CompetitionScenes
from glacier.data.folds import GroupFolds, group_folds
from glacier.data.hkh import open_hkh
from glacier.data.mask_check import MaskCheck, MaskCheckResult
from glacier.data.npy_stream import NpyRowWriter
from glacier.data.prepare_output import (
    TEMP_MARKER,
    check_free_space,
    check_output,
    disk_errors,
    remove_stale_temporaries,
)
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
from glacier.normalization import BandStats, standardize

NO_VALID_PIXELS = "without valid (non-fill) pixels"


@dataclass(frozen=True)
class PrepareOptions:
    """How images are cut, filtered, labelled and split into folds."""

    tile_size: int = 512
    num_folds: int = 5
    seed: int = 0
    min_valid: float = 0.0
    """Drop tiles whose labelled (non-fill, non-padding) share of the tile is below this."""
    min_glacier: float = 0.0
    """Drop tiles whose glacier (clean + debris) share of labelled pixels is below this."""
    snap_labels: bool = False
    """Competition: move label values outside 0/85/170/255 to the nearest class value."""
    swap_mask_channels: bool = False
    """HKH: read clean-ice labels as debris and debris as clean ice."""
    mask_check: bool = True
    """HKH: refuse labels whose debris pixels look cleaner and colder than the clean-ice ones."""
    format_version: int = fmt.FORMAT_VERSION
    """Format to write; version 1 (float32 raw values) only to compare with older data."""

    def __post_init__(self) -> None:
        if self.tile_size < 8:
            raise DataError(f"--tile-size must be at least 8, got {self.tile_size}")
        for name in ("min_valid", "min_glacier"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise DataError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
        if self.format_version not in fmt.READABLE_VERSIONS:
            raise DataError(
                f"prepared format version {self.format_version} is not one of {fmt.READABLE_VERSIONS}"
            )


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
    fill_fraction: float = 0.0
    images_with_fill: int = 0
    labels_snapped: int = 0
    mask_check: MaskCheckResult | None = None
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        labelled = max(sum(self.class_counts), 1)
        shares = ", ".join(
            f"{name} {100 * n / labelled:.2f}%"
            for name, n in zip(CLASS_NAMES, self.class_counts, strict=True)
        )
        dropped = ", ".join(f"{n} {why}" for why, n in self.dropped.items() if n) or "none"
        lines = [
            f"prepared {self.num_tiles} tiles of {self.tile_size} px from {self.num_images} images -> {self.path}",
            f"fill (no data): {100 * self.fill_fraction:.2f}% of image pixels, in {self.images_with_fill} of "
            f"{self.num_images} images; left out of the band statistics, ignored by the loss",
            f"dropped tiles: {dropped}",
            f"class shares (labelled pixels): {shares}",
        ]
        if self.labels_snapped:
            lines.append(
                f"labels: {self.labels_snapped} pixels snapped to the nearest class value (--snap-labels)"
            )
        if self.mask_check is not None:
            lines.append(self.mask_check.describe())
        return "\n".join([*lines, *self.notes, *self.fold_lines])


# ------------------------------------------------------------------------------ writer
def prepare_competition(
    src: str | Path, out: str | Path, options: PrepareOptions = PrepareOptions(), progress: bool = True
) -> PrepareSummary:
    """Preprocess a competition Train/ folder (or the unpacked zip holding it) into ``out``."""
    scenes = CompetitionScenes(src, require_labels=True, snap_labels=options.snap_labels)
    return write_prepared(out, scenes, src, options, progress)


def prepare_hkh(
    src: str | Path,
    out: str | Path,
    bands: tuple[str, ...] | list[str] | str | None = None,
    options: PrepareOptions = PrepareOptions(),
    progress: bool = True,
) -> PrepareSummary:
    """Preprocess HKH slices or raw scenes into ``out``, keeping ``bands`` (names, default the five matched)."""
    try:
        chosen = resolve_bands(bands, sensor="L7") if bands is not None else HKH_DEFAULT_BANDS
    except DataError as exc:
        raise DataError(f"--bands {bands!r}: {exc}") from None
    return write_prepared(out, open_hkh(src, chosen, options.swap_mask_channels), src, options, progress)


def _tile_record(mask: np.ndarray, options: PrepareOptions) -> tuple[np.ndarray, float, str | None]:
    """Class counts, valid fraction and the reason to drop the tile (None to keep it)."""
    counts = np.bincount(mask.ravel(), minlength=256)[:NUM_CLASSES]
    labelled = int(counts.sum())
    valid = labelled / mask.size
    glacier = (counts[1] + counts[2]) / max(labelled, 1)
    if labelled == 0:
        return counts, valid, NO_VALID_PIXELS
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
    """What pass 1 found: the kept tiles, why others were dropped, per-image totals, the
    folds of the images' groups, and the statistics and label check over the kept tiles."""

    tiles: list[_KeptTile]
    dropped: dict[str, int]
    image_counts: np.ndarray
    image_tiles: np.ndarray
    image_fill: np.ndarray
    """Fill pixels of each image (padding aside)."""
    split: GroupFolds
    stats: BandStats
    mask_check: MaskCheckResult | None


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
    check_output(out, Path(source))
    removed = remove_stale_temporaries(out)
    records = [images.record(i) for i in range(len(images))]
    if not records:
        raise DataError(f"{source}: no images found")
    tile_size = effective_tile_size(options.tile_size, [(r.height, r.width) for r in records])
    kept = _scan_tiles(images, records, tile_size, options, source, progress)
    _refuse_swapped_labels(kept.mask_check, source)
    version = options.format_version
    check_free_space(out, fmt.prepared_bytes(len(kept.tiles), len(images.bands), tile_size, version))
    with disk_errors(out), atomic_dir(out) as tmp:
        (tmp / TEMP_MARKER).write_text(f"glacier preprocess of {source}\n", encoding="utf-8")
        clipped = _write_arrays(tmp, images, kept, tile_size, version, source, progress)
        manifest = _manifest(images, source, records, kept, tile_size, options, clipped)
        (tmp / fmt.MANIFEST).write_text(fmt.manifest_text(version, **manifest), encoding="utf-8")
        (tmp / TEMP_MARKER).unlink()
    notes = [f"removed the temporary folder of an earlier interrupted run: {p}" for p in removed]
    if images.dataset == "hkh" and not options.mask_check:
        notes.append("mask check off (--no-mask-check)")
    if clipped:
        notes.append(f"{clipped} standardised values beyond +-{fmt.STANDARDIZED_LIMIT:g} std were clipped")
    pixels = sum(r.height * r.width for r in records)
    return PrepareSummary(
        path=out,
        num_images=len(records),
        num_tiles=len(kept.tiles),
        tile_size=tile_size,
        dropped=kept.dropped,
        class_counts=_ints(kept.image_counts.sum(axis=0)),
        fold_lines=kept.split.describe(options.num_folds),
        fill_fraction=float(kept.image_fill.sum() / max(pixels, 1)),
        images_with_fill=int((kept.image_fill > 0).sum()),
        labels_snapped=images.labels_snapped(),
        mask_check=kept.mask_check,
        notes=notes,
    )


def _refuse_swapped_labels(result: MaskCheckResult | None, source: str | Path) -> None:
    if result is None or result.status != "swapped":
        return
    raise DataError(
        f"{source}: the clean-ice and debris mask channels are probably swapped: {result.figures()} "
        "(debris-covered ice has the lower snow index and is warmer than clean ice); if they are swapped "
        "pass --swap-mask-channels, if the labels are right pass --no-mask-check"
    )


def _manifest(
    images: ImageSource,
    source: str | Path,
    records: list[ImageRecord],
    kept: _Kept,
    tile_size: int,
    options: PrepareOptions,
    clipped: int,
) -> dict[str, Any]:
    """The manifest's values (``fmt.manifest_text`` orders them; version 1 has fewer keys)."""
    pixels = sum(r.height * r.width for r in records)
    values = dict(
        dataset=images.dataset,
        source=str(Path(source).resolve()),
        bands=list(images.bands),
        sensor_bands=list(images.sensor_bands),
        classes=list(CLASS_NAMES),
        class_values=list(CLASS_VALUES),
        ignore_index=IGNORE_INDEX,
        tile_size=tile_size,
        num_tiles=len(kept.tiles),
        num_folds=options.num_folds,
        image_values={
            "dtype": fmt.IMAGE_DTYPES[options.format_version].name,
            "standardized": fmt.values_standardized(options.format_version),
        },
        stats=kept.stats.to_dict(),
        fill_fraction=round(float(kept.image_fill.sum() / max(pixels, 1)), 6),
        class_counts=_ints(kept.image_counts.sum(axis=0)),
        labels_snapped=images.labels_snapped(),
        mask_check=None if kept.mask_check is None else kept.mask_check.to_dict(),
        images=_image_records(records, kept, with_fill=options.format_version >= 2),
        tiles=_tile_records(records, kept),
        options=_options_record(options, kept.dropped, clipped),
        created_by=f"glacier {__version__}",
    )
    keys = fmt.manifest_keys(options.format_version)
    return {k: v for k, v in values.items() if k in keys}


def _scan_tiles(
    images: ImageSource,
    records: list[ImageRecord],
    tile_size: int,
    options: PrepareOptions,
    source: str | Path,
    progress: bool,
) -> _Kept:
    """Pass 1: which tiles to keep (with their class counts), how many were dropped why, the
    folds (stratified on the kept pixels of each group of images), and the statistics and
    label check over the kept tiles."""
    total = sum(len(tile_offsets(r.height, r.width, tile_size)) for r in records)
    tiles: list[_KeptTile] = []
    dropped: dict[str, int] = {}
    image_counts = np.zeros((len(records), NUM_CLASSES), dtype=np.int64)
    image_tiles = np.zeros(len(records), dtype=np.int64)
    image_fill = np.zeros(len(records), dtype=np.int64)
    stats = RunningBandStats(images.bands)
    check = MaskCheck(images.bands) if images.dataset == "hkh" and options.mask_check else None
    with tqdm(total=total, desc="scanning tiles", unit="tile", disable=not progress) as bar:
        for i, record in enumerate(records):
            for tile in images.tiles(i, tile_size):
                image_fill[i] += _fill_pixels(tile, record)
                counts, valid, reason = _tile_record(tile["mask"], options)
                bar.update()
                if reason is not None:
                    dropped[reason] = dropped.get(reason, 0) + 1
                    continue
                tiles.append(_KeptTile(i, tile["row"], tile["col"], counts, valid))
                image_counts[i] += counts
                image_tiles[i] += 1
                stats.update(tile["image"])
                if check is not None:
                    check.update(tile["image"], tile["mask"])
    if not tiles:
        raise DataError(f"{source}: every tile was dropped ({dropped}); lower --min-valid / --min-glacier")
    with_tiles = np.flatnonzero(image_tiles)
    try:
        split = group_folds(
            [records[i].group for i in with_tiles], image_counts[with_tiles], options.num_folds, options.seed
        )
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    return _Kept(
        tiles, dropped, image_counts, image_tiles, image_fill, split, stats.result(),
        None if check is None else check.result(),
    )  # fmt: skip


def _fill_pixels(tile: dict[str, Any], record: ImageRecord) -> int:
    """Fill pixels of a tile inside its image (the padding of edge tiles is not fill)."""
    height = min(tile["mask"].shape[0], record.height - tile["row"])
    width = min(tile["mask"].shape[1], record.width - tile["col"])
    return int(np.isnan(tile["image"][:, :height, :width]).any(axis=0).sum())


def _write_arrays(
    folder: Path,
    images: ImageSource,
    kept: _Kept,
    tile_size: int,
    version: int,
    source: str | Path,
    progress: bool,
) -> int:
    """Pass 2: stream the kept tiles into ``images.npy`` (standardised with pass 1's
    statistics; raw in version 1) and ``masks.npy``; returns how many values were clipped."""
    n, bands = len(kept.tiles), images.bands
    keep_set = {(t.image, t.row, t.col) for t in kept.tiles}
    standardized = fmt.values_standardized(version)
    shapes = (fmt.image_shape(n, len(bands), tile_size), fmt.mask_shape(n, tile_size))
    clipped = 0
    with (
        NpyRowWriter(folder / fmt.IMAGES, shapes[0], fmt.IMAGE_DTYPES[version]) as image_rows,
        NpyRowWriter(folder / fmt.MASKS, shapes[1], fmt.MASK_DTYPE) as mask_rows,
        tqdm(total=n, desc="writing tiles", unit="tile", disable=not progress) as bar,
    ):
        for i in map(int, np.flatnonzero(kept.image_tiles)):
            for tile in images.tiles(i, tile_size):
                if (i, tile["row"], tile["col"]) not in keep_set:
                    continue
                if image_rows.rows == n:
                    raise DataError(
                        f"{source}: the input changed while it was being read (more tiles than {n})"
                    )
                values = standardize(tile["image"], kept.stats) if standardized else tile["image"]
                encoded, clipped_here = fmt.encode_images(values, version)
                image_rows.append(encoded)
                mask_rows.append(tile["mask"])
                clipped += clipped_here
                bar.update()
        if image_rows.rows != n:
            raise DataError(
                f"{source}: the input changed while it was being read ({image_rows.rows} tiles, expected {n})"
            )
    return clipped


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _image_records(records: list[ImageRecord], kept: _Kept, with_fill: bool) -> list[dict[str, Any]]:
    fold_of = kept.split.fold_of
    listed = [
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
    if with_fill:  # format 2 and later
        for entry, fill, r in zip(listed, kept.image_fill, records, strict=True):
            entry["fill_fraction"] = round(float(fill) / max(r.height * r.width, 1), 6)
    return listed


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


def _options_record(options: PrepareOptions, dropped: dict[str, int], clipped: int) -> dict[str, Any]:
    return {
        "tile_size_requested": options.tile_size,
        "num_folds": options.num_folds,
        "seed": options.seed,
        "min_valid": options.min_valid,
        "min_glacier": options.min_glacier,
        "snap_labels": options.snap_labels,
        "swap_mask_channels": options.swap_mask_channels,
        "mask_check": options.mask_check,
        "dropped_tiles": dropped,
        "clipped_values": clipped,
    }
