"""The sample-data generator: real layouts, determinism, and that it is hard in the right ways."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

from glacier.domain import (
    COMPETITION_BAND_FOLDERS,
    COMPETITION_SENSOR_BANDS,
    HKH_SENSOR_BANDS,
    encoded_to_index,
)
from glacier.errors import ConfigError, DataError
from glacier.sampledata import generate_sample_data

SMALL = dict(images=3, size=64, test_images=2, hkh_slices=4, hkh_slice_size=64, hkh_scenes=1)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample") / "data"
    summary = generate_sample_data(out, seed=0)
    return out, summary


def _competition_images(root, split, label_dir):
    """(images (N, H, W, bands), labels (N, H, W)) of one split."""
    images, labels = [], []
    for label_path in sorted(label_dir.glob("*.tif")):
        bands = []
        for folder in COMPETITION_BAND_FOLDERS:
            with rasterio.open(root / split / folder / label_path.name) as src:
                bands.append(src.read(1))
        images.append(np.stack(bands, -1))
        with rasterio.open(label_path) as src:
            labels.append(encoded_to_index(src.read(1)))
    return np.stack(images), np.stack(labels)


def _competition_arrays(root, split, label_dir):
    """(pixels (N*H*W, bands), labels (N*H*W,)) of one split."""
    images, labels = _competition_images(root, split, label_dir)
    return images.reshape(-1, images.shape[-1]), labels.ravel()


def _best_threshold_mcc(values: np.ndarray, target: np.ndarray) -> float:
    """Best binary MCC of ``values > t`` or ``values < t`` over every threshold t, at once."""
    order = np.argsort(values)
    positives = target[order].astype(np.float64)
    n, p = len(values), positives.sum()
    below_pos = np.cumsum(positives)[:-1]  # positives at or below each cut
    below = np.arange(1, n, dtype=np.float64)
    tp, fp = p - below_pos, (n - below) - (p - below_pos)  # predict positive above the cut
    fn, tn = below_pos, below - below_pos
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = np.where(denom > 0, (tp * tn - fp * fn) / np.where(denom > 0, denom, 1), 0.0)
    return float(np.abs(mcc).max())  # |MCC|: "below the cut" is the mirrored rule


def test_competition_layout(default_run):
    out, _ = default_run
    root = out / "competition"
    train_names = sorted(p.name for p in (root / "Train" / "labels").glob("*.tif"))
    test_names = sorted(p.name for p in (root / "Test_labels").glob("*.tif"))
    assert train_names == [f"img{i:03d}.tif" for i in range(1, 26)]
    assert test_names == [f"img{i:03d}.tif" for i in range(26, 31)]  # ids continue after Train
    assert not (root / "Test" / "labels").exists()
    for split, names in (("Train", train_names), ("Test", test_names)):
        for folder, sensor_band in zip(COMPETITION_BAND_FOLDERS, COMPETITION_SENSOR_BANDS, strict=True):
            assert sorted(p.name for p in (root / split / folder).glob("*.tif")) == names
            with rasterio.open(root / split / folder / names[0]) as src:
                assert (src.count, src.height, src.width, src.dtypes[0]) == (1, 128, 128, "float32")
                assert src.crs.to_epsg() in (32644, 32645) and src.res == (30.0, 30.0)
                assert src.descriptions == (sensor_band,)
                values = src.read(1)
            values = values[values != 0]  # zero is fill (no data) in some tiles, as in the real data
            if folder == "Band5":  # brightness temperature, K
                assert values.min() > 200 and values.max() < 330
            else:  # Collection-2 scaled reflectance
                assert 5000 < np.median(values) < 45000
    with rasterio.open(root / "Train" / "labels" / "img001.tif") as src:
        assert src.dtypes[0] == "uint8" and src.crs.to_epsg() == 32645
    for label in [*(root / "Train" / "labels").glob("*.tif"), *(root / "Test_labels").glob("*.tif")]:
        with rasterio.open(label) as src:
            assert set(np.unique(src.read(1))) <= {0, 85, 170, 255}


def test_hkh_slices_layout(default_run):
    out, _ = default_run
    slices = out / "hkh" / "slices"
    images = sorted(slices.glob("slice_*_img_*.npy"))
    assert len(images) == 12
    nan_seen = False
    for image_path in images:
        image = np.load(image_path)
        mask = np.load(image_path.with_name(image_path.name.replace("_img_", "_mask_")))
        assert image.shape == (128, 128, 15) and image.dtype == np.float32
        assert mask.shape == (128, 128, 3) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1}
        assert np.array_equal(mask[..., 0], mask[..., 1] + mask[..., 2])
        nan_seen |= bool(np.isnan(image).any())
        valid = image[~np.isnan(image).any(-1)]
        assert valid[:, :9].min() >= 0 and valid[:, [0, 1, 2, 3, 4, 7, 8]].max() <= 255  # DN
        # channel 11 is the NEGATED NDSI, (B5 - B2) / (B5 + B2)
        b2, b5 = valid[:, 1], valid[:, 4]
        ok = b2 + b5 > 0
        assert np.allclose(valid[ok, 11], (b5[ok] - b2[ok]) / (b5[ok] + b2[ok]), atol=1e-5)
        assert 1000 < np.median(valid[:, 13]) < 9000  # elevation (m)
    assert nan_seen
    meta = json.loads((slices / "slices.geojson").read_text())
    assert meta["crs"]["properties"]["name"].endswith("32643")
    feature = meta["features"][0]
    assert {"img_source", "mask_source", "img_slice", "mask_slice", "mask_mean_0", "mask_mean_1",
            "mask_mean_2", "img_mean"} <= set(feature["properties"])  # fmt: skip
    mask = np.load(out / "hkh" / feature["properties"]["mask_slice"])
    assert feature["properties"]["mask_mean_1"] == pytest.approx(mask[..., 1].mean())
    assert feature["geometry"]["type"] == "Polygon" and len(feature["geometry"]["coordinates"][0]) == 5


def test_hkh_raw_scenes_and_polygons(default_run):
    out, _ = default_run
    scenes = sorted((out / "hkh" / "raster_data").glob("LE07_*.tif"))
    assert len(scenes) == 2
    bounds = {}
    for path in scenes:
        assert len(path.stem) == len("LE07_PPPRRR_YYYYMMDD")
        with rasterio.open(path) as src:
            assert src.count == 15 and src.dtypes[0] == "float32"
            assert src.descriptions == HKH_SENSOR_BANDS
            assert src.crs.to_epsg() in (32644, 32645)
            assert (src.height, src.width) == (260, 300)
            data = src.read()
            assert (data[:, ~np.all(data == 0, axis=0)] != 0).any()
            assert np.all(data == 0, axis=0).any()  # no-data (0, as in the real scenes)
            bounds[path.stem] = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    for kind in ("clean", "debris"):
        collection = json.loads((out / "hkh" / "vector_data" / f"{kind}.geojson").read_text())
        assert "CRS84" in collection["crs"]["properties"]["name"]  # EPSG:4326, lon/lat
        assert collection["features"], kind
        for feature in collection["features"]:
            west, south, east, north = bounds[feature["properties"]["scene"]]
            ring = np.array(feature["geometry"]["coordinates"][0])
            assert (ring[:, 0] >= west - 1e-6).all() and (ring[:, 0] <= east + 1e-6).all()
            assert (ring[:, 1] >= south - 1e-6).all() and (ring[:, 1] <= north + 1e-6).all()


def test_class_shares_near_the_real_ones(default_run):
    _, summary = default_run
    train, test, hkh_slices, hkh_raw = summary.datasets
    background, glacier, debris, lake = train.class_shares
    assert 0.60 < background < 0.80 and 0.17 < glacier < 0.33 and 0.02 < debris < 0.09
    assert 0 < lake < 0.01 and 1 <= train.notes["images with a lake"] < 25
    assert 0.55 < test.class_shares[0] < 0.85
    for hkh in (hkh_slices, hkh_raw):
        assert len(hkh.class_shares) == 3  # no lake class in HKH
        assert hkh.class_shares[2] < 0.02  # debris is rare


def test_not_separable_by_one_band_but_learnable(default_run):
    """The instrument check: one threshold fails, a per-pixel linear model is good, not perfect."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import matthews_corrcoef

    out, _ = default_run
    root = out / "competition"
    x, y = _competition_arrays(root, "Train", root / "Train" / "labels")
    x_test, y_test = _competition_arrays(root, "Test", root / "Test_labels")
    glacier = y == 1
    best_single = max(_best_threshold_mcc(x[:, band], glacier) for band in range(x.shape[1]))
    mean, std = x.mean(0), x.std(0)
    sample = np.random.default_rng(0).choice(len(x), 40_000, replace=False)
    model = LogisticRegression(max_iter=300).fit((x[sample] - mean) / std, y[sample])
    mcc_test = matthews_corrcoef(y_test, model.predict((x_test - mean) / std))
    print(
        f"best single-band glacier MCC {best_single:.3f}; logistic regression 4-class test MCC {mcc_test:.3f}"
    )
    assert best_single < 0.8
    assert 0.4 < mcc_test < 0.85
    assert mcc_test > best_single - 0.1


def _context_features(image: np.ndarray) -> np.ndarray:
    """Per image: local thermal means and the local share of bright (ice) pixels at a few scales."""
    from scipy import ndimage

    thermal = image[..., -1]
    visible = image[..., :3].mean(-1)
    bright = (visible > np.quantile(visible, 0.8)).astype(np.float64)
    features = []
    for size in (3, 7, 15, 31):
        features.append(ndimage.uniform_filter(thermal, size) - thermal.mean())
        features.append(ndimage.uniform_filter(bright, size))
    return np.stack(features, -1)


@pytest.mark.xfail(
    strict=True,
    reason="known gap: long, narrow debris-covered valley tongues now exist, but with these context "
    "features a depth-8 tree reaches debris F1 ~0.26 (per-pixel ~0.24) at 128 px for seed 0, and "
    "0.26-0.33 (per-pixel 0.24-0.28) over seeds 0-2: the context gain is ~0.04, short of 0.1",
)
def test_debris_learnable_from_context_not_per_pixel(default_run):
    """Debris looks like rock pixel by pixel, but its surroundings (ice up-glacier, cold) give it away."""
    from sklearn.metrics import f1_score
    from sklearn.tree import DecisionTreeClassifier

    out, _ = default_run
    root = out / "competition"
    images, labels = _competition_images(root, "Train", root / "Train" / "labels")
    # Per-image standardisation of the bands: a model sees each tile's contrast, not absolute gain.
    mean = images.mean((1, 2), keepdims=True)
    std = images.std((1, 2), keepdims=True) + 1e-6
    pixel = ((images - mean) / std).reshape(-1, images.shape[-1])
    context = np.concatenate(
        [pixel, np.concatenate([_context_features(i) for i in images]).reshape(len(pixel), -1)], 1
    )
    debris = (labels == 2).ravel()
    train = np.repeat(np.arange(len(images)) < 18, labels[0].size)  # images 1-18 train, 19-25 test
    scores = {}
    for name, x in (("per-pixel", pixel), ("per-pixel + context", context)):
        model = DecisionTreeClassifier(max_depth=8, class_weight="balanced", random_state=0)
        model.fit(x[train], debris[train])
        scores[name] = f1_score(debris[~train], model.predict(x[~train]))
    print("debris F1 on held-out images: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    assert scores["per-pixel"] < 0.3  # debris looks like rock
    assert scores["per-pixel + context"] > 0.3  # but where it lies gives it away
    assert scores["per-pixel + context"] > scores["per-pixel"] + 0.1


def test_same_seed_same_arrays_other_seed_differs(tmp_path):
    a = generate_sample_data(tmp_path / "a", seed=7, **SMALL).out
    b = generate_sample_data(tmp_path / "b", seed=7, **SMALL).out
    c = generate_sample_data(tmp_path / "c", seed=8, **SMALL).out
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix == ".tif":
            with rasterio.open(a / rel) as x, rasterio.open(b / rel) as y:
                assert np.array_equal(x.read(), y.read(), equal_nan=True), rel
        else:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    with (
        rasterio.open(a / "competition/Train/Band1/img001.tif") as x,
        rasterio.open(c / "competition/Train/Band1/img001.tif") as z,
    ):
        assert not np.array_equal(x.read(), z.read())


def test_refuses_to_overwrite_and_bad_options(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="--overwrite"):
        generate_sample_data(tmp_path / "busy", **SMALL)
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="size"):
        generate_sample_data(tmp_path / "x", **{**SMALL, "size": 8})


def test_cli(cli, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["--images", "3", "--size", "64", "--test-images", "1", "--hkh-slices", "2",
            "--hkh-slice-size", "64", "--hkh-scenes", "1"]  # fmt: skip
    assert cli("sample-data", out, *args) == 0
    assert "competition Train" in capsys.readouterr().out
    assert len(list((out / "competition" / "Train" / "Band3").glob("*.tif"))) == 3
    assert cli("sample-data", tmp_path / "bad", "--size", "8") == 1
    assert "size must be" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert cli("sample-data", out, *args) == 1  # exists: needs --overwrite
    assert cli("sample-data", out, *args, "--overwrite") == 0


def test_held_out_images_regenerate_the_written_test_split(tmp_path):
    """The true surface behind the Test labels (benchmarks/ensemble_error_anatomy.py splits a
    model's errors by it) comes from the very scenes sample-data wrote."""
    from glacier.sampledata.generate import held_out_images

    out = generate_sample_data(tmp_path / "d", seed=3, **SMALL).out
    images = held_out_images(SMALL["test_images"], size=SMALL["size"], seed=3)
    written, labels = _competition_images(out / "competition", "Test", out / "competition" / "Test_labels")
    assert len(images) == len(written) == SMALL["test_images"]
    for image, bands, label in zip(images, written, labels, strict=True):
        assert np.array_equal(image.labels, label)
        assert np.array_equal(np.moveaxis(image.bands, 0, -1).astype(bands.dtype), bands)
        assert image.surface.shape == label.shape and not image.surface[image.fill].any()
        # The digitiser's outline departs from the surface near boundaries, not everywhere.
        departs = (image.surface != label).mean()
        assert 0.0 < departs < 0.25, departs
    other = held_out_images(SMALL["test_images"], size=SMALL["size"], seed=4)
    assert not np.array_equal(other[0].labels, images[0].labels)
