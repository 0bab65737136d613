"""Fill is background in predictions: `glacier predict` and the exported solution.py agree."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import rasterio
import tifffile
from test_predict import STATS, read_bands, smp_mask_from_card, tiny_model, write_scenes

from glacier.data.competition import find_scenes, read_scene_image
from glacier.data.raster import write_raster
from glacier.domain import COMPETITION_BAND_FOLDERS
from glacier.models import save_model_folder
from glacier.predict import Predictor, load_models
from glacier.submission import export_submission


@pytest.fixture(scope="module")
def filled_scenes(tmp_path_factory):
    """Two scenes: a zero-filled edge (0 in every band) in one, a NaN stripe in one band of the other."""
    root = write_scenes(tmp_path_factory.mktemp("filled"), {"img001.tif": (64, 64), "img002.tif": (48, 72)})
    fill = {"img001.tif": np.zeros((64, 64), bool), "img002.tif": np.zeros((48, 72), bool)}
    fill["img001.tif"][:, :20] = True
    fill["img002.tif"][10:14, :] = True
    for name, where in fill.items():
        for b, folder in enumerate(COMPETITION_BAND_FOLDERS):
            path = root / folder / name
            with rasterio.open(path) as src:
                band, profile = src.read(1), src.profile
            if name == "img001.tif":
                band[where] = 0.0
            elif b == 3:
                band[where] = np.nan
            write_raster(path, band, profile)
    return root, fill


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "tiny"
    save_model_folder(tiny_model(3), folder, normalization=STATS)
    return folder


def test_predict_writes_background_at_fill(cli, model, filled_scenes, tmp_path):
    root, fill = filled_scenes
    predictor = Predictor(load_models(model), device="cpu")
    for scene in find_scenes(root, require_labels=False):
        image, _ = read_scene_image(scene)
        where = fill[scene.band_paths[0].name]
        raw = predictor.predict_probabilities(image).argmax(axis=0)
        assert (raw[where] != 0).any(), "the model alone predicts something other than background at fill"
        np.testing.assert_array_equal(predictor.predict_mask(image, encoded=False)[~where], raw[~where])
    assert cli("predict", model, root, "--out", tmp_path / "pred") == 0
    for name, where in fill.items():
        with rasterio.open(tmp_path / "pred" / name) as src:
            mask = src.read(1)
        assert (mask[where] == 0).all() and (mask[~where] != 0).any()


def test_solution_py_agrees_at_fill(model, filled_scenes, tmp_path):
    root, fill = filled_scenes
    report = export_submission(model, tmp_path / "sub", tta="none", check_input=root, timing=False)
    assert report["differing_pixels"] == 0
    out = tmp_path / "masks"
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "sub" / "solution.py"), "--imagepath", str(root), "--output", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for name, where in fill.items():
        assert (tifffile.imread(out / name)[where] == 0).all()


def test_the_model_cards_plain_smp_code_agrees_at_fill(cli, model, filled_scenes, tmp_path):
    root, fill = filled_scenes
    out = tmp_path / "pred"
    assert cli("predict", model, root, "--out", out, "--tta", "none", "--device", "cpu") == 0
    with rasterio.open(out / "img001.tif") as src:  # 64 x 64, a multiple of the stride; 20 px of fill
        expected = src.read(1)
    mask = smp_mask_from_card((model / "README.md").read_text(), str(model), read_bands(root, "img001.tif"))
    np.testing.assert_array_equal(mask, expected)
    assert (mask[fill["img001.tif"]] == 0).all() and len(np.unique(mask)) > 1
