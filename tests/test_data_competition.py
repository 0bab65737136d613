"""The competition reader: pairing by tile id, band order, dtypes, and clear errors for bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from data_factory import make_competition, write_tif

from glacier.data.competition import CompetitionScenes, find_scenes, read_scene_image
from glacier.domain import COMPETITION_BAND_FOLDERS, IGNORE_INDEX
from glacier.errors import DataError


def test_finds_and_reads_scenes_in_band_order(tmp_path):
    train = make_competition(tmp_path, n_images=3, size=(24, 20))
    scenes = CompetitionScenes(train, require_labels=True)
    assert len(scenes) == 3 and [s.tile_id for s in scenes.scenes] == ["001", "002", "003"]
    assert [p.parent.name for p in scenes.scenes[0].band_paths] == list(COMPETITION_BAND_FOLDERS)
    sample = scenes[0]
    image, mask = sample["image"], sample["mask"]
    assert sample["id"] == "001" and image.dtype == np.float32 and image.shape == (5, 24, 20)
    # The factory puts band b near 100 * (b + 1): the order is Band1..Band5.
    assert np.all(np.diff(np.median(image.reshape(5, -1), axis=1)) > 50)
    assert sample["profile"]["crs"].to_epsg() == 32644
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1, 2, 3}
    record = scenes.record(2)
    assert (record.id, record.group, record.source) == ("003", "003", "Band1/img003.tif")
    assert (record.height, record.width) == (24, 20)
    # The functions for scene-by-scene prediction read the same.
    found = find_scenes(train, require_labels=False)
    assert found == scenes.scenes
    np.testing.assert_array_equal(read_scene_image(found[0])[0], image)


def test_accepts_the_parent_folder_and_a_band_subset(tmp_path):
    make_competition(tmp_path, n_images=2)
    scenes = CompetitionScenes(tmp_path, require_labels=True, band_folders=["Band4", "Band1"])
    assert scenes.root == tmp_path / "Train" and scenes[0]["image"].shape[0] == 2
    assert [p.parent.name for p in scenes.scenes[0].band_paths] == ["Band4", "Band1"]
    assert (scenes.bands, scenes.sensor_bands) == (("swir1", "blue"), ("B6", "B2"))
    shutil.copytree(tmp_path / "Train" / "Band5", tmp_path / "Train" / "Band6")
    with pytest.raises(DataError, match="Band6 is not a competition band folder"):
        _ = CompetitionScenes(tmp_path).bands


def test_phase1_names_pair_by_tile_id(tmp_path):
    train = make_competition(tmp_path, n_images=3, phase1=True)
    scenes = CompetitionScenes(train, require_labels=True).scenes
    assert [s.tile_id for s in scenes] == ["00_00", "00_01", "00_02"]
    scene = scenes[1]
    assert scene.band_paths[0].name == "B2_B2_masked_00_01.tif"
    assert scene.band_paths[4].name == "B10_B10_masked_00_01.tif"
    assert scene.label_path.name == "Y_output_resized_00_01.tif" and scene.label_path.parent.name == "label"


def test_integer_bands_and_nodata(tmp_path):
    train = make_competition(tmp_path, n_images=1, dtype="int32", size=(8, 8))
    band = np.full((8, 8), 7, dtype=np.int32)
    band[0, 0] = -9999
    write_tif(train / "Band2" / "img001.tif", band, nodata=-9999)
    sample = CompetitionScenes(train, require_labels=True)[0]
    image = sample["image"]
    assert image.dtype == np.float32 and np.isnan(image[1, 0, 0]) and image[1, 1, 1] == 7
    # No data in any band is no label: the pixel is ignored, whatever the label file says.
    assert sample["mask"][0, 0] == IGNORE_INDEX and (sample["mask"] != IGNORE_INDEX).sum() == 63


def test_test_set_without_labels(tmp_path):
    train = make_competition(tmp_path, n_images=2)
    shutil.rmtree(train / "labels")
    unlabelled = CompetitionScenes(train, require_labels=False)
    assert all(s.label_path is None for s in unlabelled.scenes) and "mask" not in unlabelled[0]
    with pytest.raises(DataError, match="no label folder"):
        CompetitionScenes(train, require_labels=True)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda t: shutil.rmtree(t / "Band3"), "Band3"),
        (lambda t: [p.unlink() for p in (t / "Band2").iterdir()], r"Band2: no \.tif files"),
        (
            lambda t: (t / "Band5" / "img002.tif").unlink(),
            r"'002' \(img002.tif\) is in Band1.*missing from Band5",
        ),
        (lambda t: (t / "labels" / "img001.tif").unlink(), r"no label for image\(s\) \['001'\]"),
        (
            lambda t: shutil.copy(t / "Band2" / "img001.tif", t / "Band2" / "copy_of_img001.tif"),
            "Band2: copy_of_img001.tif and img001.tif have the same tile id '001'",
        ),
    ],
)
def test_layout_errors_name_the_problem(tmp_path, damage, message):
    train = make_competition(tmp_path, n_images=2)
    damage(train)
    with pytest.raises(DataError, match=message):
        CompetitionScenes(train, require_labels=True, band_folders=list(COMPETITION_BAND_FOLDERS))


def test_no_band_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no band folders found"):
        CompetitionScenes(tmp_path / "empty", require_labels=False)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda t: write_tif(t / "Band3" / "img001.tif", np.zeros((10, 12), np.float32)),
            "Band3/img001.tif: shape",
        ),
        (
            lambda t: write_tif(t / "labels" / "img001.tif", np.zeros((10, 12), np.uint8)),
            "labels/img001.tif: label shape",
        ),
        (
            lambda t: write_tif(t / "labels" / "img001.tif", np.full((16, 16), 100, np.uint8)),
            r"img001.tif: label 1 value\(s\) outside 0/85/170/255 in 256 pixel\(s\): 100 \(256 px\).*--snap-labels",
        ),
        (
            lambda t: (t / "Band1" / "img001.tif").write_bytes(
                (t / "Band1" / "img001.tif").read_bytes()[:300]
            ),
            "Band1/img001.tif: cannot read",
        ),
        (
            lambda t: write_tif(t / "Band4" / "img001.tif", np.full((16, 16), np.inf, np.float32)),
            r"Band4/img001.tif: 256 value\(s\) are infinite; replace them with NaN",
        ),
    ],
)
def test_file_errors_name_the_file(tmp_path, damage, message):
    train = make_competition(tmp_path, n_images=1, size=(16, 16))
    damage(train)
    with pytest.raises(DataError, match=message):
        CompetitionScenes(train, require_labels=True)[0]
