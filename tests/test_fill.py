"""Fill (no data) is one rule, found in real data and honoured by every consumer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from data_factory import make_competition, write_tif

from glacier.data.competition import CompetitionScenes
from glacier.data.fill import background_at_fill, find_fill, mark_fill
from glacier.data.prepare import PrepareOptions, prepare_competition, prepare_hkh
from glacier.data.prepared import PreparedDataset, TileDataset
from glacier.domain import HKH_SENSOR_BANDS, IGNORE_INDEX

CLIP = "LE07_134040_20070922_clip.tif"


def _raw_layout(folder, clip_path):
    """The real clip as a raw-scene dataset without label polygons (all background)."""
    (folder / "raster_data").mkdir(parents=True)
    (folder / "raster_data" / CLIP).symlink_to(clip_path)
    (folder / "vector_data").mkdir()
    for name in ("clean", "debris"):
        (folder / "vector_data" / f"{name}.geojson").write_text(
            '{"type": "FeatureCollection", "features": []}'
        )
    return folder


def test_the_rule():
    image = np.ones((3, 2, 4), np.float32)
    image[:, 0, 0] = 0  # every band 0: fill
    image[0, 0, 1] = 0  # one band 0: data
    image[2, 1, 0] = np.nan  # any band NaN: fill
    image[:, 1, 3] = [0, 0, 5]  # not every band 0: data
    expected = np.array([[1, 0, 0, 0], [1, 0, 0, 0]], bool)
    np.testing.assert_array_equal(find_fill(image), expected)
    np.testing.assert_array_equal(find_fill(np.zeros((2, 2, 2), np.int32)), np.ones((2, 2), bool))
    marked = mark_fill(image.copy())
    assert np.isnan(marked[:, expected]).all() and not np.isnan(marked[:, ~expected]).any()
    indices = np.full((2, 4), 2, np.uint8)
    np.testing.assert_array_equal(background_at_fill(indices, image), np.where(expected, 0, 2))


def test_real_clip_fill_is_found_and_left_out_of_the_statistics(hkh_fixtures, tmp_path):
    """36% of the real Landsat 7 clip is 0 in all 15 bands with no nodata tag: that is fill."""
    with rasterio.open(hkh_fixtures / CLIP) as src:
        assert src.nodata is None
        everything = src.read().astype(np.float64)
    fill = find_fill(everything)
    assert int(fill.sum()) == 8449 and fill.mean() == pytest.approx(0.3597, abs=1e-4)
    tir = HKH_SENSOR_BANDS.index("B6_VCID_1")
    assert everything[tir].std() == pytest.approx(44.22, abs=0.01)  # what the fill did to thermal
    valid = everything[:, ~fill]
    assert valid[tir].std() == pytest.approx(11.17, abs=0.01)

    summary = prepare_hkh(
        _raw_layout(tmp_path / "raw", hkh_fixtures / CLIP), tmp_path / "prep", bands=",".join(HKH_SENSOR_BANDS),
        options=PrepareOptions(tile_size=64, num_folds=1), progress=False,
    )  # fmt: skip
    manifest = json.loads((tmp_path / "prep" / "manifest.json").read_text())
    np.testing.assert_allclose(manifest["stats"]["mean"], valid.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(manifest["stats"]["std"], valid.std(axis=1), rtol=1e-9)
    assert manifest["stats"]["std"][tir] == pytest.approx(11.17, abs=0.01)
    assert manifest["fill_fraction"] == pytest.approx(8449 / (169 * 139), abs=1e-6)
    assert manifest["images"][0]["fill_fraction"] == manifest["fill_fraction"]
    assert (
        summary.fill_fraction == pytest.approx(0.3597, abs=1e-4)
        and "fill (no data): 35.97%" in summary.text()
    )
    # Fill is unlabelled: every labelled pixel of every tile is a non-fill pixel of the clip.
    prepared = PreparedDataset.open(tmp_path / "prep")
    assert int(prepared.tile_class_counts.sum()) == int((~fill).sum())
    for k, tile in enumerate(manifest["tiles"]):
        r, c = tile["row"], tile["col"]
        window = fill[r : r + 64, c : c + 64]
        h, w = window.shape
        assert tile["valid_fraction"] == pytest.approx((~window).sum() / 64**2, abs=1e-6)
        assert (prepared.masks[k][:h, :w][window] == IGNORE_INDEX).all()
        # Inputs at fill are 0 after normalisation, as NaN is.
        sample = TileDataset(prepared, [k])[0]["image"].numpy()
        assert (sample[:, :h, :w][:, window] == 0).all()


def test_min_valid_does_not_count_fill(tmp_path):
    train = make_competition(tmp_path / "src", n_images=3, size=(32, 32))
    for folder in ("Band1", "Band2", "Band3", "Band4", "Band5"):
        path = train / folder / "img001.tif"
        with rasterio.open(path) as src:
            band = src.read(1)
        band[:, :24] = 0  # three quarters of image 001 is zero fill
        write_tif(path, band)
    sample = CompetitionScenes(train)[0]
    assert np.isnan(sample["image"][:, :, :24]).all() and (sample["mask"][:, :24] == IGNORE_INDEX).all()
    summary = prepare_competition(
        train, tmp_path / "prep", PrepareOptions(tile_size=32, num_folds=2, min_valid=0.5), progress=False
    )
    assert summary.num_tiles == 2 and summary.dropped == {"below --min-valid 0.5": 1}
    assert summary.images_with_fill == 1 and summary.fill_fraction == pytest.approx(0.25)
