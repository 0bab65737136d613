"""Loading prepared datasets for training: folds, TileDataset samples, augmentation, samplers."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from data_factory import make_competition
from torch.utils.data import DataLoader

from glacier.data.prepare import PrepareOptions, prepare_competition
from glacier.data.prepared import PreparedDataset, TileDataset
from glacier.data.sampler import BalancedTileSampler, UniformTileSampler, expected_shares
from glacier.domain import IGNORE_INDEX
from glacier.errors import DataError
from glacier.normalization import BandStats, normalize


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> PreparedDataset:
    root = tmp_path_factory.mktemp("loading")
    train = make_competition(root / "src", n_images=6, size=(40, 40))
    prepare_competition(train, root / "prep", PrepareOptions(tile_size=32, num_folds=3), progress=False)
    return PreparedDataset.open(root / "prep")


def test_open_and_folds(prepared):
    assert len(prepared) == 24 and prepared.bands == ("blue", "green", "red", "swir1", "tir")
    assert prepared.images.shape == (24, 5, 32, 32) and prepared.tile_class_counts.shape == (24, 4)
    train, val = prepared.train_val_indices(1)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 24
    assert (prepared.tile_folds[val] == 1).all()
    filtered, _ = prepared.train_val_indices(1, min_valid_fraction=0.5)
    assert (prepared.tile_valid_fraction[filtered] >= 0.5).all() and len(filtered) < len(train)
    everything, none = prepared.train_val_indices(0, use_all=True)
    assert len(everything) == 24 and len(none) == 0
    with pytest.raises(DataError, match="fold 3 is out of range"):
        prepared.train_val_indices(3)
    assert prepared.validation_folds() == [0, 1, 2] and prepared.validation_folds((2, 0)) == [2, 0]
    with pytest.raises(DataError, match=r"folds \[3, -1\] are out of range: .* has folds 0..2"):
        prepared.validation_folds([0, 3, -1])


def test_open_errors(tmp_path, prepared):
    with pytest.raises(DataError, match="manifest.json, images.npy, masks.npy missing.*glacier preprocess"):
        PreparedDataset.open(tmp_path)
    with pytest.raises(DataError, match="not found"):
        PreparedDataset.open(tmp_path / "nope")
    damaged = tmp_path / "damaged"
    shutil.copytree(prepared.path, damaged)
    manifest = json.loads((damaged / "manifest.json").read_text())
    del manifest["tiles"]
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="manifest.json: it lacks tiles; preprocess the data again"):
        PreparedDataset.open(damaged)
    manifest["format_version"] = 3
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"format version 3 is not one this glacier reads \(1, 2\); upgrade"):
        PreparedDataset.open(damaged)
    manifest["format_version"] = "2"
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="format version '2' is not one this glacier reads"):
        PreparedDataset.open(damaged)


def test_the_reader_does_not_load_the_writer():
    code = "import sys, glacier.data.prepared; print(sorted(m for m in sys.modules if m.startswith('glacier.data')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "glacier.data.prepared_format" in loaded and "'glacier.data.prepare'" not in loaded


def test_samples_are_normalised_tensors(prepared):
    dataset = TileDataset(prepared, [0, 3])
    sample = dataset[1]
    assert sample["image"].dtype == torch.float32 and sample["image"].shape == (5, 32, 32)
    assert sample["mask"].dtype == torch.int64 and sample["mask"].shape == (32, 32)
    expected = normalize(prepared.raw_tile(3), prepared.stats)
    np.testing.assert_allclose(sample["image"].numpy(), expected, atol=1e-5)
    stored = np.asarray(prepared.images[3], dtype=np.float32)  # format 2: already standardised
    np.testing.assert_array_equal(sample["image"].numpy(), np.nan_to_num(stored, nan=0.0))
    assert torch.isfinite(sample["image"]).all()
    assert (sample["image"][:, 8:, :] == 0).all()  # NaN padding -> 0
    assert (sample["mask"][8:, :] == IGNORE_INDEX).all()


def test_band_selection_and_stats_override(prepared):
    stats = BandStats(("tir", "blue", "red"), (10.0, 0.0, 5.0), (2.0, 1.0, 1.0))
    sample = TileDataset(prepared, [0], bands=["tir", "blue"], stats=stats)[0]
    raw = prepared.raw_tile(0)
    np.testing.assert_allclose(sample["image"][0].numpy(), (raw[4] - 10.0) / 2.0, rtol=1e-5)
    np.testing.assert_allclose(sample["image"][1].numpy(), raw[0], rtol=1e-5)
    with pytest.raises(DataError, match=r"bands \['nir'\] are not in this dataset"):
        TileDataset(prepared, [0], bands=["nir"])


def test_crops_pad_and_focus_on_rare_pixels(prepared):
    big = TileDataset(prepared, [0], crop_size=48)[0]
    assert big["image"].shape == (5, 48, 48) and (big["mask"][32:, :] == IGNORE_INDEX).all()
    lake_tiles = np.flatnonzero(prepared.tile_class_counts[:, 3] > 0)
    focused = TileDataset(prepared, lake_tiles, crop_size=8, rare_crop_p=1.0)
    for i in range(len(focused)):
        assert (focused[i]["mask"] == 3).any()


def test_augmentation_is_deterministic_and_spatial(prepared):
    a = TileDataset(prepared, np.arange(8), augment=True, seed=3)
    b = TileDataset(prepared, np.arange(8), augment=True, seed=3)
    plain = TileDataset(prepared, np.arange(8))
    for i in range(8):
        x, y = a[i], b[i]
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["mask"], y["mask"])
        assert x["image"].shape == (5, 32, 32) and torch.isfinite(x["image"]).all()
        assert set(x["mask"].unique().tolist()) <= {0, 1, 2, 3, IGNORE_INDEX}
    changed = sum(not torch.equal(a[i]["mask"], plain[i]["mask"]) for i in range(8))
    assert changed >= 4
    first = [a[i]["mask"] for i in range(8)]
    a.set_epoch(1)
    assert any(not torch.equal(first[i], a[i]["mask"]) for i in range(8))
    # A pure flip/rotation keeps the class histogram of the tile (the affine warp may not).
    counts = [torch.bincount(a[i]["mask"].flatten(), minlength=256) for i in range(8)]
    assert (
        sum(
            torch.equal(c, torch.bincount(plain[i]["mask"].flatten(), minlength=256))
            for i, c in enumerate(counts)
        )
        >= 3
    )


def test_dataloader_with_workers_and_pickling(prepared):
    dataset = TileDataset(prepared, np.arange(6), crop_size=16, augment=True)
    restored = pickle.loads(pickle.dumps(dataset))
    assert restored.prepared._images is None  # memmaps are reopened, not copied
    assert torch.equal(restored[2]["image"], dataset[2]["image"])
    loader = DataLoader(dataset, batch_size=3, num_workers=2)
    batches = list(loader)
    assert batches[0]["image"].shape == (3, 5, 16, 16) and batches[0]["mask"].dtype == torch.int64
    torch.testing.assert_close(batches[0]["image"][1], dataset[1]["image"])


@pytest.mark.parametrize("augment", ["true", "false"])
def test_every_draw_of_a_tile_is_its_own_sample(prepared, augment):
    """The training loader draws far more samples per epoch than there are tiles: each draw
    of a tile gets its own crop (and augmentation), not a copy of the tile's first one.
    Only whole tiles train here: a crop of a padded tile's no-data is all zeros."""
    from glacier.config import load_config
    from glacier.training.builders import RunData, build_loaders

    cfg = load_config("tiny", [f"data.path={prepared.path}", "data.crop_size=16", "data.num_workers=0",
                               f"data.augment={augment}", "data.min_valid_fraction=1.0", "training.sampler.name=uniform",
                               "training.sampler.samples_per_epoch=60", "training.batch_size=6"])  # fmt: skip
    run_data = RunData.open(cfg)
    train_loader, _, (dataset, sampler) = build_loaders(cfg, run_data)
    keys = list(train_loader.sampler)
    assert [tile for tile, _ in keys] == list(sampler) and [d for _, d in keys] == list(range(60))
    images = torch.cat([batch["image"] for batch in train_loader])
    assert images.shape == (60, 5, 16, 16)
    distinct = len({image.numpy().tobytes() for image in images})
    tiles = len(run_data.train_idx)
    assert tiles <= 6 and distinct >= 55  # was `tiles` distinct samples, each repeated
    # Still a function of (seed, epoch, key) only: the same epoch again gives the same samples.
    assert torch.equal(torch.cat([batch["image"] for batch in train_loader]), images)
    assert torch.equal(dataset[keys[0]]["image"], images[0])


def _rare_world(seed: int = 0) -> np.ndarray:
    """200 tiles of 1024 px like the competition: mostly background and glacier, rare debris and lake."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((200, 4), dtype=np.int64)
    counts[:, 1] = rng.integers(0, 400, 200)
    debris = rng.random(200) < 0.2
    counts[debris, 2] = rng.integers(10, 150, debris.sum())
    lake = rng.random(200) < 0.05
    counts[lake, 3] = rng.integers(2, 20, lake.sum())
    counts[:, 0] = 1024 - counts[:, 1:].sum(axis=1)
    return counts


def test_balanced_sampler_raises_rare_class_shares():
    counts = _rare_world()
    target = {"background": 0.10, "glacier": 0.35, "debris": 0.40, "lake": 0.15}
    # Loose bounds (a tile may take 20x its uniform share): the balancing itself is tested here;
    # tests/test_recipe.py tests the bounds.
    sampler = BalancedTileSampler(counts, target, num_samples=400, seed=0, uniform_mix=0.3, max_weight=20)
    uniform = expected_shares(counts, np.full(200, 1 / 200))
    achieved = sampler.expected_shares
    print("\nclass     uniform  balanced  target")
    for k, name in enumerate(target):
        print(f"{name:<10}{uniform[k]:7.3f}  {achieved[name]:7.3f}  {target[name]:6.2f}")
    assert achieved["debris"] > 3 * uniform[2] and achieved["lake"] > 3 * uniform[3]
    assert achieved["background"] < uniform[0]
    # The drawn tiles realise those shares, and each tile that is not oversampled appears once.
    drawn = np.array(list(sampler))
    assert len(drawn) == 400
    realised = counts[drawn].sum(axis=0) / counts[drawn].sum()
    np.testing.assert_allclose(realised, [achieved[n] for n in target], atol=0.03)
    expected_copies = 400 * sampler.probabilities
    copies = np.bincount(drawn, minlength=200)
    assert (copies <= np.ceil(expected_copies)).all() and (copies >= np.floor(expected_copies)).all()


def test_samplers_are_deterministic_per_seed_and_epoch():
    counts = _rare_world()
    a = BalancedTileSampler(counts, [0.1, 0.35, 0.4, 0.15], num_samples=100, seed=7)
    b = BalancedTileSampler(counts, [0.1, 0.35, 0.4, 0.15], num_samples=100, seed=7)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    uniform = UniformTileSampler(10, seed=1)
    assert sorted(uniform) == list(range(10))
    assert len(list(UniformTileSampler(10, num_samples=25, seed=1))) == 25


def test_absent_class_is_dropped_from_the_target():
    counts = _rare_world()
    counts[:, 0] += counts[:, 3]
    counts[:, 3] = 0  # no lake anywhere, like HKH
    sampler = BalancedTileSampler(
        counts, {"background": 0.1, "glacier": 0.35, "debris": 0.4, "lake": 0.15}, 50, seed=0
    )
    shares = sampler.expected_shares
    # Within the default bound (no tile above 3x its uniform share) debris still more than doubles.
    assert shares["lake"] == 0 and shares["debris"] > 2 * counts[:, 2].sum() / counts.sum()
    with pytest.raises(DataError, match="unknown classes"):
        BalancedTileSampler(counts, {"snow": 1.0}, 10, seed=0)


def test_albumentations_backend_is_seeded_spatial_and_keeps_image_and_mask_aligned():
    from glacier.data.augment import AlbumentationsAugmentation, build_augmentation

    rng = np.random.default_rng(0)
    mask = rng.integers(0, 4, (48, 48)).astype(np.uint8)
    # Band 0 carries the mask itself, band 1 values far outside [0, 1]: a spatial transform
    # moves both with the mask, and nothing clips or rescales the floats.
    image = np.stack([mask.astype(np.float32), np.full((48, 48), 40.0, np.float32)])
    augment = build_augmentation(True, "albumentations")
    assert isinstance(augment, AlbumentationsAugmentation)
    saw_fill = False
    for index in range(12):
        seed = np.random.SeedSequence([7, 0, index])
        out_image, out_mask = augment(image, mask, seed)
        again_image, again_mask = augment(image, mask, np.random.SeedSequence([7, 0, index]))
        assert np.array_equal(out_image, again_image) and np.array_equal(out_mask, again_mask)
        assert out_image.shape == image.shape and out_image.dtype == np.float32
        labelled = out_mask != 255
        saw_fill |= not labelled.all()
        if labelled.all():  # a pure flip/rotation: band 0 is exactly the transformed mask
            assert np.array_equal(out_image[0], out_mask.astype(np.float32))
        assert set(np.unique(out_mask)) <= {0, 1, 2, 3, 255}
        assert np.isclose(out_image[1][labelled].max(), 40.0, atol=1e-3)
    assert saw_fill, "the affine warp never ran in 12 samples (p=0.3)"
    assert build_augmentation(False, "albumentations") is None


@pytest.mark.parametrize("turns", range(4))
@pytest.mark.parametrize("flip", [False, True])
def test_fast_dihedral_equals_numpy_rot90_and_flip(turns, flip):
    from glacier.data.augment import _dihedral

    rng = np.random.default_rng(turns)
    for stack in (
        rng.normal(size=(3, 7, 9)).astype(np.float32),
        rng.integers(0, 4, (1, 7, 9)).astype(np.uint8),
    ):
        expected = np.rot90(stack, turns, axes=(1, 2))
        expected = expected[:, :, ::-1] if flip else expected
        assert np.array_equal(_dihedral(stack, turns, flip), expected)
