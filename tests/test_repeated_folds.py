"""Repeated K-fold (``data.fold_split: seed``): each seed re-splits the images into other
stratified folds, runs train and validate on that split, their out-of-fold predictions record
it, and an ensemble of seeds on different splits pools them tile by tile."""

from __future__ import annotations

import contextlib
import io
import itertools
import json

import numpy as np
import pytest
from training_data import FAST, prepared_competition, tiny_run

from glacier.artifacts import RunFolder
from glacier.artifacts.oof import OofFolder
from glacier.config import load_config
from glacier.data.folds import assign_folds
from glacier.data.prepared import PreparedDataset
from glacier.decisions.fitting import MemberRun, soup_oof
from glacier.decisions.oof import OofMember, OofPool
from glacier.errors import DataError, GlacierError

FOLDS = 5


def co_fold_pairs(folds: np.ndarray) -> set[tuple[int, int]]:
    """The pairs of groups that share a fold: what a partition is, whatever its fold labels."""
    return {(a, b) for a, b in itertools.combinations(range(len(folds)), 2) if folds[a] == folds[b]}


def image_counts(rng, groups: int = 25, lake_holders: int = 5) -> np.ndarray:
    counts = np.zeros((groups, 4), dtype=np.int64)
    counts[:, 0] = rng.integers(8000, 14000, groups)
    counts[:, 1] = rng.integers(1000, 6000, groups)
    counts[:, 2] = rng.integers(10, 2000, groups)
    counts[rng.choice(groups, lake_holders, replace=False), 3] = rng.integers(3, 50, lake_holders)
    return counts


def test_another_seed_alone_relabels_the_folds_but_shuffled_it_is_another_partition():
    counts = image_counts(np.random.default_rng(0))
    prepared = assign_folds(counts, FOLDS, seed=0)
    # The greedy pass without shuffle: another seed, the same images together.
    assert co_fold_pairs(assign_folds(counts, FOLDS, seed=7)) == co_fold_pairs(prepared)
    lake = np.flatnonzero(counts[:, 3])
    partitions = []
    for seed in (1, 2, 3, 4):
        folds = assign_folds(counts, FOLDS, seed=seed, shuffle=True)
        np.testing.assert_array_equal(folds, assign_folds(counts, FOLDS, seed=seed, shuffle=True))
        sizes = np.bincount(folds, minlength=FOLDS)
        assert sizes.max() - sizes.min() <= 1
        assert len(set(folds[lake])) == len(lake)  # the rarest class still in every fold
        shared = co_fold_pairs(folds) & co_fold_pairs(prepared)
        assert len(shared) < len(co_fold_pairs(prepared)) / 2, seed
        partitions.append(co_fold_pairs(folds))
    assert len({frozenset(p) for p in partitions}) == len(partitions)


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("data"), n_images=6, folds=2)


def test_a_prepared_dataset_resplits_whole_images_and_keeps_its_own_folds_by_default(prep):
    prepared = PreparedDataset.open(prep)
    np.testing.assert_array_equal(prepared.split_tile_folds(None), prepared.tile_folds)
    images = np.array([t["image"] for t in prepared.manifest["tiles"]])
    own = prepared.split_tile_folds(None)
    splits = {seed: prepared.split_tile_folds(seed) for seed in range(1, 6)}
    assert any(not np.array_equal(f, own) and not np.array_equal(f, 1 - own) for f in splits.values())
    for seed, folds in splits.items():
        for image in set(images):
            assert len(set(folds[images == image])) == 1  # an image's tiles share a fold
        train, val = prepared.train_val_indices(0, split_seed=seed)
        np.testing.assert_array_equal(val, np.flatnonzero(folds == 0))
        assert set(train).isdisjoint(val) and len(train) + len(val) == len(prepared)


def test_a_manifest_without_image_groups_cannot_be_resplit(prep):
    prepared = PreparedDataset.open(prep)
    prepared.manifest = {**prepared.manifest, "images": []}
    with pytest.raises(DataError, match="no image groups to re-split"):
        prepared.split_tile_folds(3)
    np.testing.assert_array_equal(prepared.split_tile_folds(None), prepared.tile_folds)


def test_fold_split_seed_follows_the_training_seed():
    cfg = load_config("tiny", overrides=["data.fold_split=seed", "training.seed=17"])
    assert cfg.fold_split_seed == 17
    assert load_config("tiny", overrides=["training.seed=17"]).fold_split_seed is None


def write_unit_oof(root, unit: str, folds: dict[int, list[int]], split_seed):
    """OOF folders whose probabilities encode the tile (class 1's probability = tile / 10)."""
    members = []
    for fold, tiles in folds.items():
        probs = np.zeros((len(tiles), 4, 2, 2), np.float32)
        probs[:, 1] = np.array(tiles, np.float32)[:, None, None] / 10
        probs[:, 0] = 1 - probs[:, 1]
        labels = np.array([np.full((2, 2), t % 4) for t in tiles], np.uint8)
        folder = OofFolder.write(
            root / f"{unit}_fold{fold}", probs, labels, fold=fold, tiles=tiles,
            images=[f"img{t}" for t in tiles], split_seed=split_seed, num_tiles=6,
        )  # fmt: skip
        members.append(OofMember(f"{unit}_fold{fold}", unit, folder))
    return members


def test_oof_pool_aligns_units_from_different_splits_tile_by_tile(tmp_path):
    first = write_unit_oof(tmp_path, "seed1", {0: [0, 1, 2], 1: [3, 4, 5]}, None)
    other = write_unit_oof(tmp_path, "seed2", {0: [4, 0, 2], 1: [5, 1, 3]}, 2)
    pool = OofPool.from_members(first + other)
    np.testing.assert_array_equal(pool.tiles, [0, 1, 2, 3, 4, 5])
    for unit in ("seed1", "seed2"):
        probs = pool.unit_probabilities(unit)
        np.testing.assert_allclose(probs[:, 1, 0, 0], pool.tiles / 10, atol=1e-3)
    np.testing.assert_array_equal(pool.labels[:, 0, 0], pool.tiles % 4)
    assert pool.covers_all and not pool.shares_split
    assert OofPool.from_members(first).shares_split
    runs = [MemberRun(m.name, 1, 0, tmp_path) for m in first + other]
    with pytest.raises(GlacierError, match="different fold splits"):
        soup_oof(pool, runs)


def test_oof_pool_refuses_a_unit_of_two_splits_or_other_tiles(tmp_path):
    first = write_unit_oof(tmp_path / "a", "seed1", {0: [0, 1, 2], 1: [3, 4, 5]}, None)
    mixed = write_unit_oof(tmp_path / "b", "seed2", {0: [4, 0, 2]}, 2)
    mixed += write_unit_oof(tmp_path / "c", "seed2", {1: [5, 1, 3]}, 3)
    with pytest.raises(DataError, match="different fold splits"):
        OofPool.from_members(first + mixed)
    elsewhere = write_unit_oof(tmp_path / "d", "seed3", {0: [4, 0, 2], 1: [5, 1, 6]}, 3)
    with pytest.raises(DataError, match="different tiles"):
        OofPool.from_members(first + elsewhere)


def test_an_ensemble_of_seeds_on_their_own_splits_pools_every_tile_once_per_seed(prep, tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "ensemble"
    args = tiny_run("ensemble", prep, out, "--seeds", "1,2", "--all-folds", "--epochs", "1",
                    "--set", "data.fold_split=seed")  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert run_cli(*args, *FAST) == 0
    prepared = PreparedDataset.open(prep)
    images = [t["image"] for t in prepared.manifest["tiles"]]
    for seed in (1, 2):
        folds = prepared.split_tile_folds(seed)
        for fold in (0, 1):
            oof = RunFolder(out / "runs" / f"seed{seed}_fold{fold}").oof
            assert oof.split_seed == seed
            np.testing.assert_array_equal(oof.tiles, np.flatnonzero(folds == fold))
            assert oof.meta["images"] == [images[t] for t in oof.tiles]
    manifest = json.loads((out / "ensemble.json").read_text())
    assert manifest["oof"]["coverage"].startswith("6 of 6 tiles")
    names = [row["name"] for row in manifest["oof"]["table"]]
    assert "probability mean" in names and "weight soup (per fold)" not in names
    assert "weight soup not measured" in printed.getvalue()
    assert manifest["calibration"] is not None
