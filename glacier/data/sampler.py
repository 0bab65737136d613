"""Tile samplers: pixel-balanced (oversamples tiles rich in rare classes) and uniform.

Both are torch Samplers over positions 0..N-1 of the tiles they are given, with
``set_epoch``. Their order depends only on (seed, epoch), so every process of a
distributed run draws the same sequence and Accelerate's batch-sampler sharding hands each
process its own part of it.

``NumberedDraws`` wraps either for a training loader: it hands the dataset each draw's
number with its tile, so a tile drawn twice in an epoch gets two crops and augmentations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from torch.utils.data import Sampler

from glacier.domain import CLASS_NAMES
from glacier.errors import DataError


def _target_vector(target_shares: Mapping[str, float] | Sequence[float]) -> np.ndarray:
    if isinstance(target_shares, Mapping):
        unknown = sorted(set(target_shares) - set(CLASS_NAMES))
        if unknown:
            raise DataError(f"target shares name unknown classes {unknown}; classes are {list(CLASS_NAMES)}")
        target = np.array([float(target_shares.get(name, 0.0)) for name in CLASS_NAMES])
    else:
        target = np.asarray(target_shares, dtype=np.float64)
        if target.shape != (len(CLASS_NAMES),):
            raise DataError(
                f"target shares need one value per class ({', '.join(CLASS_NAMES)}), got {list(target)}"
            )
    if (target < 0).any() or target.sum() <= 0:
        raise DataError(f"target shares must be non-negative and not all zero, got {list(target)}")
    return target


def balance_tile_weights(
    class_counts: np.ndarray,
    target: np.ndarray,
    max_weight: float = 3.0,
    uniform_mix: float = 0.5,
    iterations: int = 500,
) -> np.ndarray:
    """Tile probabilities whose expected drawn-pixel class shares approach ``target``, bounded.

    Minimises KL(target || achieved shares) over the tile probabilities p by exponentiated
    gradient (multiplicative updates on one weight per tile): a tile gains in proportion to
    how much of each under-represented class it holds. A tile cannot change its own
    composition, so a target may be out of reach (40% debris when no tile is 40% debris);
    the unbounded optimum then puts most draws on a few tiles. Two bounds keep the draws
    diverse: a share ``uniform_mix`` of them is uniform, and no tile's final probability
    exceeds ``max_weight`` times the uniform 1/N (so the effective sample size stays at
    least N / ``max_weight``). Classes absent from the data are dropped from the target;
    tiles without labelled pixels get 0.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if max_weight < 1:
        raise DataError(f"max_weight must be at least 1 (the uniform weight), got {max_weight}")
    if not 0 <= uniform_mix <= 1:
        raise DataError(f"uniform_mix must be within 0..1, got {uniform_mix}")
    pixels = counts.sum(axis=1)
    usable = pixels > 0
    if not usable.any():
        raise DataError("no tile has labelled pixels: nothing to sample")
    present = counts.sum(axis=0) > 0
    goal = np.where(present, target, 0.0)
    if goal.sum() <= 0:
        raise DataError(f"none of the target classes {list(target)} occur in the data")
    goal = goal / goal.sum()
    uniform = usable / usable.sum()
    if uniform_mix >= 1:
        return uniform
    # The cap of the balanced part that bounds the mixture by max_weight / N.
    cap = (max_weight - uniform_mix) / (1.0 - uniform_mix) / usable.sum()
    balanced = uniform.copy()
    for _ in range(iterations):
        # d KL / d p_i = n_i / (p . n) - sum_c goal_c * C_ic / (p . C_c)
        gradient = pixels / (balanced @ pixels) - (counts / np.maximum(balanced @ counts, 1e-12)) @ goal
        step = 1.0 / max(np.abs(gradient[usable]).max(), 1e-12)
        balanced = np.where(usable, balanced * np.exp(-step * gradient), 0.0)
        balanced = cap_probabilities(balanced / balanced.sum(), cap)
    return (1.0 - uniform_mix) * balanced + uniform_mix * uniform


def cap_probabilities(p: np.ndarray, cap: float) -> np.ndarray:
    """``p`` (summing to 1) with no entry above ``cap``: the excess of capped entries goes to
    the others in proportion to their probability (the KL projection onto the capped simplex)."""
    p = np.asarray(p, dtype=np.float64).copy()
    if cap * np.count_nonzero(p) < 1.0:
        raise DataError(f"cap {cap} x {np.count_nonzero(p)} tiles < 1: no distribution fits")
    capped = np.zeros(len(p), dtype=bool)
    for _ in range(len(p)):
        over = (p > cap * (1 + 1e-12)) & ~capped
        if not over.any():
            break
        capped |= over
        free_mass = 1.0 - cap * capped.sum()
        rest = p[~capped].sum()
        p[capped] = cap
        if rest > 0:
            p[~capped] *= free_mass / rest
    return p


def effective_sample_size(probabilities: np.ndarray) -> float:
    """Kish's effective number of tiles of a draw distribution, ``1 / sum(p^2)``: N for
    uniform draws, 1 when every draw is the same tile."""
    p = np.asarray(probabilities, dtype=np.float64)
    return float(1.0 / np.square(p / p.sum()).sum())


def expected_shares(class_counts: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Expected class shares of the pixels of tiles drawn with ``probabilities``."""
    counts = np.asarray(class_counts, dtype=np.float64)
    drawn = probabilities @ counts
    return drawn / drawn.sum()


class _EpochSampler(Sampler[int]):
    """Draws that depend only on (seed, epoch): the same on every process, so Accelerate's
    batch-sampler sharding hands each process its own part of one epoch."""

    num_samples: int
    seed: int
    epoch: int

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])


class BalancedTileSampler(_EpochSampler):
    """Draws ``num_samples`` tile positions so that class shares of drawn pixels approach a target.

    A tile with expected count e = num_samples * p appears floor(e) times plus once more
    with probability e - floor(e) (systematic residual sampling), so tiles repeat within an
    epoch only where oversampling asks for it. ``target_shares`` is a dict by class name
    (e.g. ``{"background": 0.5, "glacier": 0.3, "debris": 0.2}``) or one value per class.
    ``max_weight`` and ``uniform_mix`` bound the weights (``balance_tile_weights``).
    """

    def __init__(
        self,
        tile_class_counts: np.ndarray,
        target_shares: Mapping[str, float] | Sequence[float],
        num_samples: int,
        seed: int,
        uniform_mix: float = 0.5,
        max_weight: float = 3.0,
    ) -> None:
        if num_samples < 1:
            raise DataError(f"num_samples must be at least 1, got {num_samples}")
        self.class_counts = np.asarray(tile_class_counts, dtype=np.int64)
        self.target = _target_vector(target_shares)
        self.probabilities = balance_tile_weights(
            self.class_counts, self.target, max_weight=max_weight, uniform_mix=uniform_mix
        )
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.epoch = 0

    @property
    def expected_shares(self) -> dict[str, float]:
        """Expected class shares of drawn pixels (compare with the target)."""
        shares = expected_shares(self.class_counts, self.probabilities)
        return {name: float(s) for name, s in zip(CLASS_NAMES, shares, strict=True)}

    @property
    def effective_sample_size(self) -> float:
        """Effective number of distinct tiles the draws amount to (``effective_sample_size``)."""
        return effective_sample_size(self.probabilities)

    def __iter__(self) -> Iterator[int]:
        rng = self._rng()
        expected = self.num_samples * self.probabilities
        base = np.floor(expected).astype(np.int64)
        residual = expected - base
        extra = self.num_samples - int(base.sum())
        picks = np.repeat(np.arange(len(expected)), base)
        if extra > 0:
            cumulative = np.cumsum(residual)
            points = rng.random() + np.arange(extra)
            chosen = np.searchsorted(cumulative, points * cumulative[-1] / extra, side="right")
            picks = np.concatenate([picks, np.minimum(chosen, len(expected) - 1)])
        rng.shuffle(picks)
        return iter(picks[: self.num_samples].tolist())


class UniformTileSampler(_EpochSampler):
    """Each tile once per epoch in a (seed, epoch)-determined order; ``num_samples`` beyond N repeats."""

    def __init__(self, num_tiles: int, num_samples: int | None = None, seed: int = 0) -> None:
        if num_tiles < 1:
            raise DataError("no tiles to sample")
        self.num_tiles = int(num_tiles)
        self.num_samples = int(num_samples or num_tiles)
        self.seed = int(seed)
        self.epoch = 0

    @property
    def effective_sample_size(self) -> float:
        return float(self.num_tiles)

    def __iter__(self) -> Iterator[int]:
        rng = self._rng()
        rounds = -(-self.num_samples // self.num_tiles)
        order = np.concatenate([rng.permutation(self.num_tiles) for _ in range(rounds)])
        return iter(order[: self.num_samples].tolist())


class NumberedDraws(Sampler[tuple[int, int]]):
    """``(tile position, draw number in the epoch)`` for every draw of ``sampler``.

    ``TileDataset`` seeds a sample's crop and augmentation by its key. With the bare tile
    position as the key, every draw of a tile in one epoch got the *same* crop and the same
    augmentation: with more samples per epoch than tiles (a step budget on a small set) or a
    balanced sampler's oversampling, most of an epoch repeated a few distinct samples (12
    tiles drawn 160 times gave 12 distinct crops, 13 copies each). The draw number makes
    each draw its own sample and still depends only on (seed, epoch), so every process of a
    distributed run sees the same keys.
    """

    def __init__(self, sampler: Sampler[int]) -> None:
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((int(tile), draw) for draw, tile in enumerate(self.sampler))
