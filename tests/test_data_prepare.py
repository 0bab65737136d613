"""`glacier preprocess`: the prepared-dataset format, determinism, folds, filters, atomic errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_factory import make_competition, make_hkh_scenes, make_hkh_slices, write_tif

from glacier.data.competition import CompetitionScenes
from glacier.data.folds import assign_folds, group_folds
from glacier.data.prepared import PreparedDataset
from glacier.data.prepared_format import MANIFEST_KEYS
from glacier.domain import COMPETITION_BANDS, IGNORE_INDEX
from glacier.errors import DataError


def _load(prep):
    manifest = json.loads((prep / "manifest.json").read_text())
    return manifest, np.load(prep / "images.npy", mmap_mode="r"), np.load(prep / "masks.npy", mmap_mode="r")


def _preprocess(cli, train, out, *options):
    """`glacier preprocess competition` with 32 px tiles and 2 folds, quietly; its exit code."""
    return cli(
        "preprocess", "competition", train, "--out", out, "--tile-size", "32", "--folds", "2", "-q", *options
    )


def test_competition_format(tmp_path, cli):
    train = make_competition(tmp_path / "src", n_images=5, size=(40, 40))
    prep = tmp_path / "prep"
    assert (
        cli("preprocess", "competition", train, "--out", prep, "--tile-size", "32", "--folds", "5", "-q") == 0
    )
    manifest, images, masks = _load(prep)
    # 40 px images, 32 px tiles: 2 x 2 tiles each, the remainder padded.
    # Format 2: float16 standardised values, NaN at fill and padding.
    assert images.dtype == np.float16 and images.shape == (20, 5, 32, 32)
    assert manifest["format_version"] == 2 and manifest["image_values"] == {
        "dtype": "float16",
        "standardized": True,
    }
    assert masks.dtype == np.uint8 and masks.shape == (20, 32, 32)
    assert manifest["format"] == "glacier-prepared" and manifest["num_tiles"] == 20
    assert manifest["bands"] == list(COMPETITION_BANDS) and manifest["sensor_bands"] == [
        "B2",
        "B3",
        "B4",
        "B6",
        "B10",
    ]
    assert manifest["class_values"] == [0, 85, 170, 255] and manifest["ignore_index"] == 255
    assert "created" not in json.dumps(manifest).replace("created_by", "")
    tile = manifest["tiles"][3]
    assert (tile["row"], tile["col"]) == (32, 32)
    assert np.isnan(images[3][:, 8:, :]).all() and (masks[3][8:, :] == IGNORE_INDEX).all()
    assert tile["valid_fraction"] == pytest.approx(64 / 1024)
    # Per-tile counts agree with the masks; image counts with their tiles.
    for k, t in enumerate(manifest["tiles"]):
        assert t["class_counts"] == np.bincount(masks[k].ravel(), minlength=256)[:4].tolist()
    assert sum(i["class_counts"][1] for i in manifest["images"]) == manifest["class_counts"][1]
    # Statistics: float64 nan-aware mean/std over every valid pixel of the source, matching numpy.
    scenes = CompetitionScenes(train)
    raw = np.stack([scenes[i]["image"] for i in range(len(scenes))]).astype(np.float64)
    values = raw.transpose(1, 0, 2, 3).reshape(5, -1)
    mean, std = np.nanmean(values, axis=1), np.nanstd(values, axis=1)
    np.testing.assert_allclose(manifest["stats"]["mean"], mean, rtol=1e-10)
    np.testing.assert_allclose(manifest["stats"]["std"], std, rtol=1e-10)
    # Stored values are (x - mean) / std of the source tile, to float16 precision.
    expected = (raw[0, :, :32, :32] - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(np.asarray(images[0], np.float64), expected, atol=2e-3)
    np.testing.assert_allclose(PreparedDataset.open(prep).raw_tile(0), raw[0, :, :32, :32], rtol=1e-3)
    # Five images, five folds: one image each, and tiles follow their image's fold.
    assert sorted(i["fold"] for i in manifest["images"]) == [0, 1, 2, 3, 4]
    fold_of = {i["id"]: i["fold"] for i in manifest["images"]}
    assert all(t["fold"] == fold_of[t["image"]] for t in manifest["tiles"])


def test_small_images_clamp_the_tile_size(tmp_path, cli):
    train = make_competition(tmp_path / "src", n_images=2, size=(24, 20))
    assert cli("preprocess", "competition", train, "--out", tmp_path / "p", "--folds", "2", "-q") == 0
    manifest, images, _ = _load(tmp_path / "p")
    assert manifest["tile_size"] == 24 and images.shape == (2, 5, 24, 24)


def test_same_input_twice_is_byte_identical(tmp_path, cli):
    train = make_competition(tmp_path / "src", n_images=4)
    for out in ("a", "b"):
        assert _preprocess(cli, train, tmp_path / out) == 0
    for name in ("images.npy", "masks.npy", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert list(json.loads((tmp_path / "a" / "manifest.json").read_text())) == list(MANIFEST_KEYS)


def test_filters_drop_tiles_and_say_so(tmp_path, cli, capsys):
    train = make_competition(tmp_path / "src", n_images=3, size=(40, 40))
    out = tmp_path / "p"
    assert _preprocess(cli, train, out, "--min-valid", "0.5") == 0
    manifest, images, _ = _load(out)
    # Of each image's 4 tiles only the full one is at least half valid.
    assert manifest["num_tiles"] == 3 and images.shape[0] == 3
    assert all(t["valid_fraction"] >= 0.5 for t in manifest["tiles"])
    assert "9 below --min-valid 0.5" in capsys.readouterr().out
    assert _preprocess(cli, train, out, "--min-glacier", "0.2") == 0
    manifest, _, masks = _load(out)
    for k in range(manifest["num_tiles"]):
        counts = np.bincount(masks[k].ravel(), minlength=256)[:4]
        assert (counts[1] + counts[2]) / counts.sum() >= 0.2


def test_fold_assignment_spreads_rare_classes():
    # 10 images; 3 hold lake and 5 hold debris: every fold of 5 gets at most one lake image
    # and each debris image lands where debris is scarcest.
    counts = np.zeros((10, 4), dtype=np.int64)
    counts[:, 0] = 1000
    counts[:, 1] = 200
    counts[[1, 4, 7], 3] = [5, 30, 12]
    counts[[0, 2, 3, 5, 8], 2] = [40, 90, 10, 60, 20]
    for seed in range(5):
        folds = assign_folds(counts, 5, seed=seed)
        assert np.bincount(folds, minlength=5).tolist() == [2] * 5
        assert len(set(folds[[1, 4, 7]])) == 3
        assert len(set(folds[[0, 2, 3, 5, 8]])) == 5
        np.testing.assert_array_equal(folds, assign_folds(counts, 5, seed=seed))
    assert any((assign_folds(counts, 5, 0) != assign_folds(counts, 5, s)).any() for s in range(1, 5))


def test_group_folds_keep_a_group_together_and_stratify_on_its_total():
    counts = np.array([[90, 10, 0, 0], [80, 10, 10, 0], [100, 0, 0, 0], [50, 0, 0, 5]])
    split = group_folds(["scene_2", "scene_1", "scene_2", "scene_3"], counts, num_folds=3, seed=1)
    assert split.groups == ("scene_1", "scene_2", "scene_3")
    np.testing.assert_array_equal(split.counts, [[80, 10, 10, 0], [190, 10, 0, 0], [50, 0, 0, 5]])
    np.testing.assert_array_equal(split.folds, assign_folds(split.counts, 3, seed=1))
    assert sorted(split.fold_of.values()) == [0, 1, 2]
    assert split.describe(3)[split.fold_of["scene_2"]].endswith(
        "background 190, glacier 10, debris 0, lake 0"
    )
    with pytest.raises(DataError, match="only 3 image"):
        group_folds(["a", "b", "c"], counts[:3], num_folds=4)


def test_hkh_slices_and_scenes(tmp_path, cli):
    make_hkh_slices(tmp_path / "glacier_data" / "slices", scenes=3, per_scene=2, size=32)
    prep = tmp_path / "prep"
    assert (
        cli(
            "preprocess",
            "hkh",
            tmp_path / "glacier_data",
            "--out",
            prep,
            "--bands",
            "B1,B5,ndsi",
            "--folds",
            "3",
            "-q",
        )
        == 0
    )
    manifest, images, masks = _load(prep)
    assert manifest["bands"] == ["blue", "swir1", "ndsi_neg"] and manifest["sensor_bands"] == [
        "B1",
        "B5",
        "ndsi",
    ]
    assert images.shape == (6, 3, 32, 32) and manifest["class_counts"][3] == 0
    # Slices of one scene share a fold.
    by_group = {}
    for image in manifest["images"]:
        by_group.setdefault(image["group"], set()).add(image["fold"])
    assert all(len(f) == 1 for f in by_group.values()) and len(by_group) == 3
    assert (masks[:, :4] == IGNORE_INDEX).all()

    make_hkh_scenes(tmp_path / "raw", size=(50, 70))
    assert (
        cli(
            "preprocess",
            "hkh",
            tmp_path / "raw",
            "--out",
            tmp_path / "p2",
            "--tile-size",
            "32",
            "--folds",
            "1",
            "-q",
        )
        == 0
    )
    manifest, images, _ = _load(tmp_path / "p2")
    assert manifest["bands"] == ["blue", "green", "red", "swir1", "tir"] and images.shape == (6, 5, 32, 32)
    assert manifest["class_counts"][1:3] == [550, 100]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda t: (t / "Band4" / "img002.tif").unlink(), "missing from Band4"),
        (
            lambda t: write_tif(t / "labels" / "img001.tif", np.full((40, 40), 7, np.uint8)),
            "labels/img001.tif: label 1 value(s) outside 0/85/170/255 in 1600 pixel(s): 7 (1600 px)",
        ),
        (
            lambda t: (t / "Band1" / "img003.tif").write_bytes(b"II*\x00garbage"),
            "Band1/img003.tif: cannot read",
        ),
    ],
)
def test_bad_input_fails_cleanly_with_no_output(tmp_path, cli, capsys, damage, message):
    train = make_competition(tmp_path / "src", n_images=3)
    damage(train)
    out = tmp_path / "prep"
    assert cli("preprocess", "competition", train, "--out", out, "--folds", "2", "-q") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".prep")]


def test_refuses_to_replace_a_foreign_folder_and_too_many_folds(tmp_path, cli, capsys):
    train = make_competition(tmp_path / "src", n_images=2)
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    assert cli("preprocess", "competition", train, "--out", foreign, "-q") == 1
    assert (foreign / "thesis.tex").exists()
    assert cli("preprocess", "competition", train, "--out", tmp_path / "p", "--folds", "5", "-q") == 1
    assert "only 2 image(s) to split into 5 folds" in capsys.readouterr().err
    assert cli("preprocess", "hkh", train, "--out", tmp_path / "p", "-q") == 1
    assert "not an HKH dataset folder" in capsys.readouterr().err
    assert cli("preprocess", "competition", train, "--out", tmp_path / "p", "--bands", "B1", "-q") == 1
    assert "error: --bands is for hkh" in capsys.readouterr().err and not (tmp_path / "p").exists()
