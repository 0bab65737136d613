"""Reading the prepared-dataset format for training: the dataset, its folds, and a torch Dataset.

    prepared = PreparedDataset.open("prep/competition")
    train_idx, val_idx = prepared.train_val_indices(fold=0)
    train = TileDataset(prepared, train_idx, crop_size=256, augment=True, seed=42)
    val = TileDataset(prepared, val_idx)
    sample = train[0]  # {"image": float32 (C, h, w) normalised, "mask": int64 (h, w), 255 ignore}

The arrays are memory-mapped (no decoding per sample). A samplers' indices are positions
in ``TileDataset`` (0..len-1), so build a sampler from ``prepared.tile_class_counts[train_idx]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from glacier.data import prepared_format as fmt
from glacier.data.augment import AlbumentationsAugmentation, TileAugmentation
from glacier.domain import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES
from glacier.errors import DataError
from glacier.normalization import BandStats, destandardize, normalize, restandardize

_RUN_PREPROCESS = "run `glacier preprocess competition|hkh SRC --out FOLDER` to create one"


class PreparedDataset:
    """A prepared-dataset folder: manifest, memory-mapped tiles and per-tile metadata."""

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = path
        self.manifest = manifest
        self.bands: tuple[str, ...] = tuple(manifest["bands"])
        self.stats = BandStats.from_dict(manifest["stats"])
        self.format_version = int(manifest["format_version"])
        self.standardized = fmt.values_standardized(self.format_version)
        """Whether ``images`` holds standardised values (format 2) or raw ones (format 1)."""
        tiles = manifest["tiles"]
        self.tile_folds = np.array([t["fold"] for t in tiles], dtype=np.int64)
        self.tile_class_counts = np.array([t["class_counts"] for t in tiles], dtype=np.int64).reshape(
            -1, NUM_CLASSES
        )
        self.tile_valid_fraction = np.array([t["valid_fraction"] for t in tiles], dtype=np.float64)
        self._images: np.ndarray | None = None
        self._masks: np.ndarray | None = None

    @classmethod
    def open(cls, path: str | Path) -> PreparedDataset:
        """Open and check a prepared dataset; a DataError names what is missing or inconsistent."""
        path = Path(path)
        if not path.is_dir():
            raise DataError(f"{path}: prepared-dataset folder not found; {_RUN_PREPROCESS}")
        missing = [n for n in fmt.FILES if not (path / n).is_file()]
        if missing:
            raise DataError(
                f"{path}: not a prepared dataset, {', '.join(missing)} missing; {_RUN_PREPROCESS}"
            )
        manifest_path = path / fmt.MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DataError(f"{manifest_path}: not valid JSON ({exc}); {_RUN_PREPROCESS}") from None
        problem = fmt.manifest_problem(manifest)
        if problem is not None:
            raise DataError(
                f"{manifest_path}: {problem}; preprocess the data again with this version of glacier "
                f"({_RUN_PREPROCESS})"
            )
        dataset = cls(path, manifest)
        n, t, c = manifest["num_tiles"], manifest["tile_size"], len(dataset.bands)
        expected = {fmt.IMAGES: fmt.image_shape(n, c, t), fmt.MASKS: fmt.mask_shape(n, t)}
        dtypes = {fmt.IMAGES: fmt.IMAGE_DTYPES[dataset.format_version], fmt.MASKS: fmt.MASK_DTYPE}
        for name, array in ((fmt.IMAGES, dataset.images), (fmt.MASKS, dataset.masks)):
            if array.shape != expected[name] or array.dtype != dtypes[name]:
                raise DataError(
                    f"{path / name}: {array.dtype} {array.shape} does not match the manifest "
                    f"({dtypes[name]} {expected[name]}); the folder is damaged, preprocess again"
                )
        if len(dataset.tile_folds) != n:
            raise DataError(f"{manifest_path}: lists {len(dataset.tile_folds)} tiles, expected {n}")
        return dataset

    # Memmaps are opened lazily and dropped when pickled (DataLoader workers, spawn): pickling
    # a np.memmap would copy the whole array into every worker.
    def _load(self, name: str) -> np.ndarray:
        try:
            return np.load(self.path / name, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.path / name}: cannot be read ({exc}); preprocess again") from None

    @property
    def images(self) -> np.ndarray:
        """(N, C, T, T) as stored, NaN = fill (memory-mapped): float16 standardised values
        (format 2) or float32 raw values (format 1). ``raw_tile`` decodes either."""
        if self._images is None:
            self._images = self._load(fmt.IMAGES)
        return self._images

    def raw_tile(self, index: int) -> np.ndarray:
        """Tile ``index`` as float32 (C, T, T) raw band values, NaN = fill."""
        stored = self.images[index]
        return destandardize(stored, self.stats) if self.standardized else np.array(stored, np.float32)

    @property
    def masks(self) -> np.ndarray:
        """uint8 (N, T, T) class indices, 255 = ignore (memory-mapped)."""
        if self._masks is None:
            self._masks = self._load(fmt.MASKS)
        return self._masks

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_images": None, "_masks": None}

    def __len__(self) -> int:
        return len(self.tile_folds)

    @property
    def num_folds(self) -> int:
        return int(self.manifest["num_folds"])

    @property
    def tile_size(self) -> int:
        return int(self.manifest["tile_size"])

    def validation_folds(self, folds: Sequence[int] | None = None) -> list[int]:
        """The folds to validate on: ``folds`` checked against this dataset's, or all of them."""
        if folds is None:
            return list(range(self.num_folds))
        bad = [k for k in folds if not 0 <= k < self.num_folds]
        if bad:
            listed = f"fold {bad[0]} is" if len(bad) == 1 else f"folds {bad} are"
            raise DataError(f"{listed} out of range: {self.path} has folds 0..{self.num_folds - 1}")
        return [int(k) for k in folds]

    def split_tile_folds(self, split_seed: int | None = None) -> np.ndarray:
        """(N,) fold of each tile: the dataset's own folds (``None``), or the same images
        re-split into as many stratified folds with ``split_seed`` (repeated K-fold; image
        groups stay whole, as in preprocess)."""
        if split_seed is None:
            return self.tile_folds
        from glacier.data.folds import group_folds

        images = self.manifest.get("images") or []
        if not images or any("group" not in i or "class_counts" not in i for i in images):
            raise DataError(
                f"{self.path}: the manifest lists no image groups to re-split (data.fold_split: seed); "
                f"preprocess again with this version of glacier, or keep data.fold_split: prepared"
            )
        with_tiles = [i for i in images if i.get("num_tiles", 1) > 0]
        split = group_folds(
            [i["group"] for i in with_tiles],
            np.array([i["class_counts"] for i in with_tiles], dtype=np.int64),
            self.num_folds,
            seed=split_seed,
            shuffle=True,
        )
        fold_of_image = {i["id"]: split.fold_of[i["group"]] for i in with_tiles}
        return np.array([fold_of_image[t["image"]] for t in self.manifest["tiles"]], dtype=np.int64)

    def train_val_indices(
        self,
        fold: int,
        use_all: bool = False,
        min_valid_fraction: float = 0.0,
        split_seed: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Tile indices to train on and to validate on for ``fold``.

        Validation is every tile of the fold's images; training the other folds' tiles with
        at least ``min_valid_fraction`` labelled pixels. ``use_all`` trains on every fold and
        returns no validation tiles. ``split_seed``: the folds of ``split_tile_folds``.
        """
        if not use_all:
            self.validation_folds([fold])
        keep = self.tile_valid_fraction >= min_valid_fraction
        if use_all:
            return np.flatnonzero(keep), np.array([], dtype=np.int64)
        in_fold = self.split_tile_folds(split_seed) == fold
        return np.flatnonzero(~in_fold & keep), np.flatnonzero(in_fold)


class TileDataset(Dataset):
    """Tiles of a prepared dataset as ``{"image", "mask"}`` samples for training or validation.

    ``bands`` selects and orders channels by name; ``stats`` overrides the dataset's
    statistics (a fine-tuned model keeps those it was trained with). ``crop_size`` takes a
    random crop (padded with ignore where the tile is smaller); with ``rare_crop_p`` that
    crop is, with that probability, centred on a pixel of the tile's rarest foreground
    class (among ``rare_classes`` when given, by name). Randomness depends only on (seed, epoch,
    key): call ``set_epoch`` each epoch (before creating the DataLoader iterator; persistent
    workers keep the epoch they started with). A training loader draws through
    ``NumberedDraws``, whose keys tell repeated draws of one tile apart.
    """

    def __init__(
        self,
        prepared: PreparedDataset,
        indices: np.ndarray | list[int] | None = None,
        bands: tuple[str, ...] | list[str] | None = None,
        crop_size: int | None = None,
        augment: bool | TileAugmentation | AlbumentationsAugmentation | None = False,
        stats: BandStats | None = None,
        seed: int = 0,
        rare_crop_p: float = 0.0,
        rare_classes: Sequence[str] | None = None,
    ) -> None:
        self.prepared = prepared
        self.indices = np.arange(len(prepared)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.bands = tuple(bands) if bands is not None else prepared.bands
        missing = [b for b in self.bands if b not in prepared.bands]
        if missing:
            raise DataError(
                f"{prepared.path}: bands {missing} are not in this dataset (it has {list(prepared.bands)})"
            )
        band_idx = [prepared.bands.index(b) for b in self.bands]
        # A plain slice reads the memmap without a fancy-index gather when bands are unchanged.
        self._band_sel = slice(None) if band_idx == list(range(len(prepared.bands))) else band_idx
        self.stats = (stats or prepared.stats).select(self.bands)
        self._stored_stats = prepared.stats.select(self.bands) if prepared.standardized else None
        self.crop_size = crop_size
        self.augmentation = TileAugmentation(self.stats) if augment is True else (augment or None)
        self.seed = seed
        self.epoch = 0
        self.rare_crop_p = rare_crop_p
        totals = prepared.tile_class_counts.sum(axis=0)
        self._rarity = [c for c in np.argsort(totals, kind="stable") if c != 0 and totals[c] > 0]
        if rare_classes is not None:  # centre only on the classes asked for (e.g. debris)
            self._rarity = [c for c in self._rarity if CLASS_NAMES[c] in rare_classes]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def _crop(self, image: np.ndarray, mask: np.ndarray, tile: int, rng: np.random.Generator):
        size = self.crop_size
        _, h, w = image.shape
        if h < size or w < size:
            padded_image = np.full((image.shape[0], max(h, size), max(w, size)), np.nan, dtype=np.float32)
            padded_image[:, :h, :w] = image
            padded_mask = np.full(padded_image.shape[1:], IGNORE_INDEX, dtype=np.uint8)
            padded_mask[:h, :w] = mask
            image, mask, (h, w) = padded_image, padded_mask, padded_mask.shape
        top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        if self.rare_crop_p > 0 and rng.random() < self.rare_crop_p:
            counts = self.prepared.tile_class_counts[tile]
            present = [c for c in self._rarity if counts[c] > 0]
            if present:
                pixels = np.flatnonzero(mask == present[0])
                if pixels.size:
                    y, x = divmod(int(pixels[rng.integers(pixels.size)]), w)
                    top = int(np.clip(y - size // 2, 0, h - size))
                    left = int(np.clip(x - size // 2, 0, w - size))
        return image[:, top : top + size, left : left + size], mask[top : top + size, left : left + size]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """The sample at position ``key``, or at ``(position, draw)`` from ``NumberedDraws``:
        the draw number gives each draw of a tile in an epoch its own crop and augmentation."""
        index, draw = (key, None) if np.ndim(key) == 0 else key
        tile = int(self.indices[index])
        image = self.prepared.images[tile][self._band_sel]
        mask = self.prepared.masks[tile]
        entropy = [self.seed, self.epoch, int(index)] + ([] if draw is None else [int(draw)])
        seed = np.random.SeedSequence(entropy)
        crop_seed, augment_seed = seed.spawn(2)
        if self.crop_size is not None:
            image, mask = self._crop(image, mask, tile, np.random.default_rng(crop_seed))
        # A fresh float32 array either way: the memmap is never written.
        if self._stored_stats is not None:
            image = restandardize(image, self._stored_stats, self.stats)
        else:
            image = normalize(image, self.stats)
        mask = np.array(mask, dtype=np.uint8)
        if self.augmentation is not None:
            image, mask = self.augmentation(image, mask, augment_seed)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)),
            "mask": torch.from_numpy(mask.astype(np.int64)),
        }
