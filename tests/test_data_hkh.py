"""The HKH reader: real Landsat-7 clip and slice masks, synthetic slices and raw scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import rasterio.warp
from data_factory import make_hkh_scenes, make_hkh_slices, pixel_box

from glacier.data import hkh
from glacier.domain import HKH_BANDS, IGNORE_INDEX, resolve_bands
from glacier.errors import DataError

CLIP = "LE07_134040_20070922_clip.tif"


def test_real_slice_masks_map_to_the_class_map(hkh_fixtures):
    for name, clean in (("slice_6_mask_072.npy", 697), ("slice_14_mask_062.npy", 33)):
        classes = hkh.slice_mask_to_classes(np.load(hkh_fixtures / name))
        assert classes.shape == (512, 512)
        assert int((classes == 1).sum()) == clean
        assert int((classes == 2).sum()) == 0
        assert set(np.unique(classes)) <= {0, 1}


def test_real_clip_read_by_band_name(hkh_fixtures, tmp_path):
    """Bands are picked by their descriptions; labels from a GeoJSON in another CRS land on the grid."""
    (tmp_path / "raster_data").mkdir()
    (tmp_path / "raster_data" / CLIP).symlink_to(hkh_fixtures / CLIP)
    with rasterio.open(hkh_fixtures / CLIP) as src:
        assert (src.height, src.width, src.crs.to_epsg()) == (169, 139, 32647)
        everything = src.read()
        # A 10 x 20 px clean-ice box at rows 30..39, cols 40..59, written in WGS 84.
        box = rasterio.warp.transform_geom(src.crs, "EPSG:4326", pixel_box(src.transform, 30, 40, 40, 60))
    (tmp_path / "vector_data").mkdir()
    for name, geometries in (("clean", [box]), ("debris", [])):
        features = [{"type": "Feature", "properties": {}, "geometry": g} for g in geometries]
        (tmp_path / "vector_data" / f"{name}.geojson").write_text(
            json.dumps({"type": "FeatureCollection", "features": features})
        )

    bands = resolve_bands("B5,B1,B6_VCID_1,elevation", sensor="L7")
    assert bands == ("swir1", "blue", "tir", "elevation")
    scenes = hkh.open_hkh(tmp_path, bands)
    assert isinstance(scenes, hkh.HkhScenes) and len(scenes) == 1
    record = scenes.record(0)
    assert (record.id, record.source, record.height, record.width) == (
        CLIP[:-4],
        f"raster_data/{CLIP}",
        169,
        139,
    )
    tiles = list(scenes.tiles(0, 128))
    assert [(t["row"], t["col"]) for t in tiles] == [(0, 0), (0, 128), (128, 0), (128, 128)]
    image, mask = tiles[0]["image"], tiles[0]["mask"]
    # The clip's corners are zero fill (0 in every band, no nodata tag): NaN in every band.
    fill = (everything == 0).all(axis=0)
    expected = np.where(fill, np.nan, everything[[4, 0, 5, 13]])  # B5 = swir1 is channel 4, ...
    np.testing.assert_array_equal(image, expected[:, :128, :128])
    # Reprojection to WGS 84 and back bends the box edges slightly: allow a pixel of slack per edge.
    assert abs(int((mask == 1).sum()) - 200) <= 30 and mask[35, 50] == 1
    # (10, 10) is fill: unlabelled (ignore), not background; so is every fill pixel.
    assert fill[10, 10] and mask[10, 10] == IGNORE_INDEX
    assert (mask[fill[:128, :128]] == IGNORE_INDEX).all() and (mask[~fill[:128, :128]] != IGNORE_INDEX).all()
    # The 139 px wide scene leaves an 11 px remainder: padded with NaN and ignore.
    edge_image, edge_mask = tiles[1]["image"], tiles[1]["mask"]
    assert np.isnan(edge_image[:, :, 11:]).all() and (edge_mask[:, 11:] == IGNORE_INDEX).all()
    np.testing.assert_array_equal(np.isnan(edge_image[:, :, :11]).any(axis=0), fill[:128, 128:])
    # The whole scene read at once is the same pixels as its tiles.
    whole = scenes[0]
    assert whole["image"].shape == (4, 169, 139)
    np.testing.assert_array_equal(whole["image"][:, :128, 128:], edge_image[:, :, :11])
    np.testing.assert_array_equal(whole["mask"][:128, :128], mask)


@pytest.mark.parametrize(("fmt", "crs"), [("geojson", 4326), ("geojson", 32645), ("shp", 4326)])
def test_raw_scene_labels_are_rasterised_on_the_scene_grid(tmp_path, fmt, crs):
    expected = make_hkh_scenes(tmp_path, vector_format=fmt, vector_crs=crs)
    scenes = hkh.HkhScenes(tmp_path, ("blue", "swir1"))
    assert [p.name for p in scenes.paths] == ["LE07_140041_20051012.tif"]
    tiles = list(scenes.tiles(0, 80))
    assert len(tiles) == 1
    image, mask = tiles[0]["image"], tiles[0]["mask"]
    assert image.shape == (2, 80, 80)
    h, w = expected["shape"]
    assert int((mask == 1).sum()) == expected["clean"]
    assert int((mask == 2).sum()) == expected["debris"]  # debris burns over clean ice
    assert (mask[h - 3 : h, : w // 4] == IGNORE_INDEX).all()  # NaN pixels are ignored


def test_slices_layout_reads_channels_by_name(tmp_path):
    make_hkh_slices(tmp_path / "glacier_data" / "slices", scenes=1, per_scene=1, size=16)
    slices = hkh.open_hkh(tmp_path / "glacier_data", ("swir1", "blue"))
    assert isinstance(slices, hkh.HkhSlices) and slices.folder.name == "slices" and not slices.one_hot_masks
    pair = slices.pairs[0]
    sample = slices[0]
    image, mask = sample["image"], sample["mask"]
    assert sample["id"] == pair.slice_id and slices.record(0).group == f"scene_{pair.scene}"
    raw = np.load(pair.image_path)
    np.testing.assert_array_equal(image[0], raw[..., HKH_BANDS.index("swir1")])
    np.testing.assert_array_equal(image[1], raw[..., 0])
    assert (mask[:2] == IGNORE_INDEX).all()  # the NaN scan-line gap
    raw_mask = np.load(pair.mask_path)
    assert int((mask == 1).sum()) == int(raw_mask[2:, :, 1].sum())


def test_split_masks_are_one_hot(tmp_path):
    folder = tmp_path / "splits" / "train"
    folder.mkdir(parents=True)
    np.save(folder / "slice_1_img_000.npy", np.ones((4, 4, 15), np.float32))
    one_hot = np.zeros((4, 4, 3), np.uint8)
    one_hot[..., 2] = 1
    one_hot[0, 0] = (1, 0, 0)
    one_hot[1, 1] = (0, 1, 0)
    np.save(folder / "slice_1_mask_000.npy", one_hot)
    slices = hkh.open_hkh(folder, ("blue",))
    assert slices.one_hot_masks
    mask = slices[0]["mask"]
    assert mask[0, 0] == 1 and mask[1, 1] == 2 and int((mask == 0).sum()) == 14


def test_unknown_layout_and_missing_pieces(tmp_path):
    with pytest.raises(DataError, match="not an HKH dataset folder"):
        hkh.open_hkh(tmp_path)
    make_hkh_scenes(tmp_path)
    (tmp_path / "vector_data" / "debris.geojson").unlink()
    with pytest.raises(DataError, match="vector_data: no debris.geojson or debris.shp"):
        hkh.open_hkh(tmp_path)
    for scene in (tmp_path / "raster_data").iterdir():
        scene.unlink()
    (tmp_path / "vector_data" / "clean.geojson").rename(tmp_path / "vector_data" / "debris.geojson")
    with pytest.raises(DataError, match="no clean.geojson or clean.shp"):
        hkh.HkhScenes(tmp_path)
    with pytest.raises(DataError, match="raw HKH scenes need raster_data"):
        hkh.HkhScenes(tmp_path / "raster_data")
    (tmp_path / "slices").mkdir()
    np.save(tmp_path / "slices" / "slice_0_img_000.npy", np.zeros((4, 4, 15), np.float32))
    with pytest.raises(DataError, match="slice_0_mask_000.npy is missing"):
        hkh.open_hkh(tmp_path)
    with pytest.raises(DataError, match=r"bands \['nope'\] not found"):
        hkh.HkhSlices(tmp_path / "slices", ("blue", "nope"))


def test_scene_without_band_descriptions(tmp_path):
    from data_factory import write_tif

    make_hkh_scenes(tmp_path)
    write_tif(tmp_path / "raster_data" / "LE07_140041_20051012.tif", np.zeros((15, 4, 4), np.float32))
    with pytest.raises(DataError, match="LE07_140041_20051012.tif: bands lack descriptions"):
        list(hkh.open_hkh(tmp_path).tiles(0, 4))
