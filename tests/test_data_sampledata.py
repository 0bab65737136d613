"""Integration: `glacier sample-data` output preprocesses into valid prepared datasets."""

from __future__ import annotations

import numpy as np

from glacier.data.prepared import PreparedDataset, TileDataset


def test_preprocess_sample_data(tmp_path, cli):
    out = tmp_path / "sample"
    args = [
        "--images",
        "5",
        "--size",
        "64",
        "--test-images",
        "1",
        "--hkh-slices",
        "4",
        "--hkh-slice-size",
        "32",
    ]
    assert cli("sample-data", out, *args, "--hkh-scenes", "1") == 0
    comp, hkh_slices, hkh_raw = tmp_path / "comp", tmp_path / "hkh", tmp_path / "hkh_raw"
    assert (
        cli("preprocess", "competition", out / "competition" / "Train", "--out", comp, "--folds", "5", "-q")
        == 0
    )
    assert cli("preprocess", "hkh", out / "hkh", "--out", hkh_slices, "--folds", "1", "-q") == 0
    (tmp_path / "raw").mkdir()
    for name in ("raster_data", "vector_data"):
        (tmp_path / "raw" / name).symlink_to(out / "hkh" / name)
    assert (
        cli(
            "preprocess", "hkh", tmp_path / "raw", "--out", hkh_raw, "--tile-size", "64", "--folds", "1", "-q"
        )
        == 0
    )

    prepared = PreparedDataset.open(comp)
    # 64 px images with the default 512 px tile size give one 64 px tile each.
    assert prepared.tile_size == 64 and len(prepared) == 5 and prepared.images.shape == (5, 5, 64, 64)
    assert prepared.tile_class_counts[:, 1].sum() > 0  # glaciers are labelled
    sample = TileDataset(prepared, [0], augment=True)[0]
    assert sample["image"].shape == (5, 64, 64) and np.isfinite(sample["image"].numpy()).all()
    for folder in (hkh_slices, hkh_raw):
        hkh = PreparedDataset.open(folder)
        assert (
            hkh.bands == ("blue", "green", "red", "swir1", "tir") and hkh.tile_class_counts[:, 3].sum() == 0
        )
        assert hkh.tile_class_counts[:, 1].sum() > 0
