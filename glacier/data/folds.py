"""Image-level K-fold assignment, stratified so that rare classes spread over the folds.

Cross-validation splits by image (or by scene, for HKH slices cut from one scene), never by
tile: the competition's test images come from an unseen region. With only 25 images and a
lake class present in a few of them, a random split often puts every lake image in one
fold. Instead, a greedy pass deals images out like cards: the images holding the rarest
class first, each to the fold that currently holds the least of that class among the folds
with the fewest images. Ties are broken by a seeded shuffle, so a seed fixes the split.

    split = group_folds(["scene_1", "scene_1", "scene_2"], image_class_counts, num_folds=2)
    split.fold_of["scene_1"]
    other = group_folds(groups, image_class_counts, num_folds=5, seed=43, shuffle=True)

The greedy pass is nearly deterministic: another seed relabels the folds but rarely changes
which images share one. ``shuffle`` deals the groups of each rarest-class bucket in a seeded
random order instead of largest holders first, so each seed gives another partition, still
stratified (repeated K-fold: ensemble members that differ in their training images).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from glacier.domain import CLASS_NAMES
from glacier.errors import DataError


@dataclass(frozen=True)
class GroupFolds:
    """The fold of each group of images (the images of one group share a fold)."""

    groups: tuple[str, ...]
    counts: np.ndarray
    """(G, num_classes) labelled pixels per class of each group, which the split is stratified on."""
    folds: np.ndarray
    """(G,) fold of each group."""

    @property
    def fold_of(self) -> dict[str, int]:
        return {group: int(fold) for group, fold in zip(self.groups, self.folds, strict=True)}

    def describe(self, num_folds: int) -> list[str]:
        """One line per fold: its groups and pixels per class (for the preprocess summary)."""
        return describe_folds(self.folds, self.counts, num_folds)


def group_folds(
    image_groups: Sequence[str],
    image_counts: np.ndarray,
    num_folds: int,
    seed: int = 0,
    shuffle: bool = False,
) -> GroupFolds:
    """Stratified folds of the groups of some images: ``image_groups[i]`` is image i's group,
    ``image_counts[i]`` its (num_classes,) pixel counts per class; ``shuffle``: see the module."""
    groups = sorted(set(image_groups))
    index = {group: k for k, group in enumerate(groups)}
    counts = np.zeros((len(groups), np.shape(image_counts)[1]), dtype=np.int64)
    for group, row in zip(image_groups, image_counts, strict=True):
        counts[index[group]] += row
    return GroupFolds(tuple(groups), counts, assign_folds(counts, num_folds, seed, shuffle))


def assign_folds(
    class_counts: np.ndarray, num_folds: int, seed: int = 0, shuffle: bool = False
) -> np.ndarray:
    """Fold (0..num_folds-1) of each group, given its (G, num_classes) pixel counts per class.

    Fold sizes differ by at most one group; groups rich in rare (non-background) classes
    are spread first. Deterministic for a given input and seed. ``shuffle``: within each
    rarest-class bucket, deal in a seeded random order (another partition per seed).
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    groups = counts.shape[0]
    if num_folds < 1:
        raise DataError(f"--folds must be at least 1, got {num_folds}")
    if groups < num_folds:
        raise DataError(
            f"only {groups} image(s) to split into {num_folds} folds (HKH slices of one scene count as one "
            f"image: they share a fold); use --folds {max(groups, 1)} or fewer"
        )
    totals = counts.sum(axis=0)
    # Rare classes, rarest first: the foreground classes present at all, by total pixels.
    rare = [c for c in np.argsort(totals, kind="stable") if c != 0 and totals[c] > 0]
    shares = counts / np.maximum(totals, 1)  # each group's share of each class's total

    rng = np.random.default_rng(seed)
    tie_break = rng.permutation(groups)

    def sort_key(g: int) -> tuple:
        # Groups whose rarest class is rarer come first; within a class, larger holders first.
        held = [rank for rank, c in enumerate(rare) if counts[g, c] > 0]
        first = held[0] if held else len(rare)
        if shuffle:
            return (first, tie_break[g])
        return (first, -(shares[g, rare[first]] if held else 0.0), tie_break[g])

    folds = np.full(groups, -1, dtype=np.int64)
    size = np.zeros(num_folds, dtype=np.int64)
    load = np.zeros((num_folds, len(rare)))
    fold_order = rng.permutation(num_folds)
    for g in sorted(range(groups), key=sort_key):
        open_folds = [f for f in fold_order if size[f] == size.min()]
        # Compare folds on the classes this group holds first (rarest first), then the rest.
        held = [k for k, c in enumerate(rare) if counts[g, c] > 0]
        order = held + [k for k in range(len(rare)) if k not in held]
        best = min(open_folds, key=lambda f: tuple(load[f, order]))
        folds[g] = best
        size[best] += 1
        load[best] += shares[g, rare]
    return folds


def describe_folds(folds: np.ndarray, class_counts: np.ndarray, num_folds: int) -> list[str]:
    """One line per fold: number of groups and pixel count per class (for the summary)."""
    counts = np.asarray(class_counts)
    lines = []
    for f in range(num_folds):
        member = folds == f
        per_class = counts[member].sum(axis=0)
        parts = ", ".join(f"{name} {int(n)}" for name, n in zip(CLASS_NAMES, per_class, strict=False))
        lines.append(f"fold {f}: {int(member.sum())} image group(s); pixels {parts}")
    return lines
