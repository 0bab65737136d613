"""Out-of-fold predictions of whole cross-validations, pooled: every training tile once.

    pool = OofPool.from_members([OofMember("seed42_fold0", "seed42", RunFolder(r).oof), ...])
    probs = pool.unit_probabilities("seed42")        # float32 (N, K, T, T), every tile once
    mcc = pool.metrics(probs.argmax(1))["mcc"]        # pooled over all pixels, as the competition

A *unit* is what covers every fold once: one cross-validation run (its fold models), or one
seed of a seed x fold ensemble. An ensemble of the same kind as a final seed ensemble is, for
fold f, the average over units of their fold-f models; selection weighs units. Units may
come from different splits of the images (``data.fold_split``, repeated K-fold): each
unit's prediction of a tile is still out-of-fold for that unit, so they are aligned tile by
tile, in the first unit's order (its folds are the pool's, for cross-fitting). Torch-free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from glacier.artifacts.oof import OofFolder
from glacier.domain import IGNORE_INDEX, NUM_CLASSES
from glacier.errors import DataError
from glacier.metrics import confusion_matrix, metrics_from_confusion


@dataclasses.dataclass(frozen=True)
class OofMember:
    """One model's out-of-fold predictions and the unit it belongs to."""

    name: str
    unit: str
    oof: OofFolder


class OofPool:
    """Units' out-of-fold predictions aligned tile by tile (folds in increasing order)."""

    def __init__(self, members: Sequence[OofMember]) -> None:
        if not members:
            raise DataError("no out-of-fold predictions to pool")
        self.members = list(members)
        self.units = list(dict.fromkeys(m.unit for m in members))
        by_unit: dict[str, dict[int, OofMember]] = {u: {} for u in self.units}
        for member in members:
            fold = member.oof.fold
            if fold in by_unit[member.unit]:
                other = by_unit[member.unit][fold].name
                raise DataError(f"{member.name} and {other} both predict fold {fold} for {member.unit}")
            by_unit[member.unit][fold] = member
        self.by_unit = by_unit
        self.folds = sorted(by_unit[self.units[0]])
        reference = [by_unit[self.units[0]][f].oof for f in self.folds]
        self._order = self._check_alignment(np.concatenate([o.tiles for o in reference]))
        self.fold_of_tile = np.concatenate(
            [np.full(len(o.tiles), f) for f, o in zip(self.folds, reference, strict=True)]
        )
        self.tiles = np.concatenate([o.tiles for o in reference])
        self.images = [i for o in reference for i in o.meta["images"]]
        self.labels = np.concatenate([np.asarray(o.labels()) for o in reference])
        self.num_tiles = reference[0].meta.get("num_tiles")
        self.tta = reference[0].meta.get("tta")
        if len(np.unique(self.tiles)) != len(self.tiles):
            raise DataError("out-of-fold predictions name a tile twice: do the folds come from one dataset?")

    def _check_alignment(self, reference_tiles: np.ndarray) -> dict[str, np.ndarray | None]:
        """Every unit covers the same folds, its members one split, and all units the same
        tiles; returns, per unit, the order that puts its tiles in the first unit's order
        (None: already in it)."""
        first = self.units[0]
        position = {int(t): i for i, t in enumerate(reference_tiles)}
        order: dict[str, np.ndarray | None] = {}
        for unit in self.units:
            folds = self.by_unit[unit]
            if sorted(folds) != self.folds:
                raise DataError(f"{unit} predicts folds {sorted(folds)}, {first} folds {self.folds}")
            splits = {folds[f].oof.split_seed for f in self.folds}
            if len(splits) > 1:
                raise DataError(
                    f"the members of {unit} come from different fold splits ({sorted(splits, key=str)}): "
                    "one unit is one cross-validation, on one split"
                )
            tiles = np.concatenate([folds[f].oof.tiles for f in self.folds])
            if np.array_equal(tiles, reference_tiles):
                order[unit] = None
                continue
            if sorted(tiles.tolist()) != sorted(position):
                raise DataError(f"{unit} and {first} predicted different tiles")
            # Tile p of the first unit's order is this unit's tile order[unit][p].
            inverse = np.empty(len(tiles), dtype=np.int64)
            inverse[[position[int(t)] for t in tiles]] = np.arange(len(tiles))
            order[unit] = inverse
        return order

    @property
    def shares_split(self) -> bool:
        """Whether every unit's fold f predicted the same tiles (one split of the images)."""
        return all(order is None for order in self._order.values())

    @classmethod
    def from_members(cls, members: Sequence[OofMember]) -> OofPool:
        missing = [m.name for m in members if not m.oof.exists()]
        if missing:
            raise DataError(f"no out-of-fold predictions for {', '.join(missing)} (their run's oof/ folder)")
        return cls(members)

    @property
    def covers_all(self) -> bool:
        """Whether every tile of the prepared dataset is predicted (all folds present)."""
        return self.num_tiles is not None and len(self.tiles) == int(self.num_tiles)

    def coverage(self) -> str:
        total = "?" if self.num_tiles is None else str(self.num_tiles)
        return f"{len(self.tiles)} of {total} tiles ({len(set(self.images))} images, folds {self.folds})"

    def unit_probabilities(self, unit: str) -> np.ndarray:
        """float32 (N, K, T, T): the unit's probabilities for every pooled tile (in the pool's
        tile order, whatever the unit's split)."""
        probs = np.concatenate(
            [np.asarray(self.by_unit[unit][f].oof.probabilities(), dtype=np.float32) for f in self.folds]
        )
        order = self._order[unit]
        return probs if order is None else probs[order]

    def valid(self) -> np.ndarray:
        """bool (N, T, T): the labelled pixels (ignore and padding left out)."""
        return self.labels != IGNORE_INDEX

    def metrics(self, indices: np.ndarray, where: np.ndarray | None = None) -> dict[str, Any]:
        """MCC, IoU... of class ``indices`` (N, T, T) against the labels, pooled over all
        pixels of the tiles selected by ``where`` (a bool per tile; default all)."""
        labels = self.labels if where is None else self.labels[where]
        return metrics_from_confusion(confusion_matrix(indices, labels, NUM_CLASSES, IGNORE_INDEX))

    def fold_mask(self, folds: Sequence[int]) -> np.ndarray:
        """bool per pooled tile: in one of ``folds``."""
        return np.isin(self.fold_of_tile, list(folds))
