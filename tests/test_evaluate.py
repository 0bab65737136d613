"""`glacier evaluate`: real GeoTIFF masks in, sklearn-identical scores, plots and clear errors out."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rasterio.transform import from_origin
from sklearn.metrics import matthews_corrcoef

from glacier.data.raster import write_raster
from glacier.domain import CLASS_VALUES, index_to_encoded
from glacier.errors import DataError
from glacier.evaluation import evaluate_folders

# Masks carry a real georeference (UTM 45N, 30 m pixels), like Landsat-derived labels.
GEO = {"crs": "EPSG:32645", "transform": from_origin(500000, 3100000, 30, 30)}


def write_masks(folder, masks, prefix="img"):
    folder.mkdir(parents=True, exist_ok=True)
    for tile, mask in masks.items():
        write_raster(folder / f"{prefix}{tile}.tif", index_to_encoded(mask), GEO)


def make_pair(tmp_path, n=3, side=32, seed=0):
    rng = np.random.default_rng(seed)
    truth, pred = {}, {}
    for i in range(1, n + 1):
        t = np.zeros((side, side), dtype=np.uint8)
        t[:, side // 3 :] = 1
        t[side // 2 :, side // 2 :] = 2
        t[2:6, 2:6] = 3
        noise = rng.random((side, side)) < 0.2
        p = np.where(noise, rng.integers(0, 4, (side, side)), t).astype(np.uint8)
        truth[f"{i:03d}"], pred[f"{i:03d}"] = t, p
    write_masks(tmp_path / "truth", truth)
    write_masks(tmp_path / "pred", pred, prefix="pred_")  # other prefix: paired by tile id
    return truth, pred


def test_scores_equal_sklearn_over_all_pixels(tmp_path, cli):
    truth, pred = make_pair(tmp_path)
    out = tmp_path / "scores.json"
    assert (
        cli("evaluate", tmp_path / "pred", tmp_path / "truth", "--json", out, "--plots", tmp_path / "plots")
        == 0
    )
    result = json.loads(out.read_text())
    flat_t = np.concatenate([truth[k].ravel() for k in sorted(truth)])
    flat_p = np.concatenate([pred[k].ravel() for k in sorted(truth)])
    assert result["mcc"] == pytest.approx(matthews_corrcoef(flat_t, flat_p), abs=1e-12)
    assert result["images"] == 3 and len(result["per_image"]) == 3
    assert set(result["iou"]) == {"background", "glacier", "debris", "lake"}
    assert np.asarray(result["confusion"]).sum() == flat_t.size
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == ["confusion.png", "overlay_001.png", "overlay_002.png", "overlay_003.png"]
    assert (tmp_path / "plots" / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_perfect_prediction(tmp_path):
    truth, _ = make_pair(tmp_path)
    result = evaluate_folders(tmp_path / "truth", tmp_path / "truth")
    assert result["mcc"] == pytest.approx(1.0) and result["miou"] == pytest.approx(1.0)


def test_prints_a_table(tmp_path, cli, capsys):
    make_pair(tmp_path)
    assert cli("evaluate", tmp_path / "pred", tmp_path / "truth") == 0
    out = capsys.readouterr().out
    assert "MCC" in out and "debris" in out and "IoU" in out


def test_mismatched_tile_ids_name_them(tmp_path, cli, capsys):
    make_pair(tmp_path)
    (tmp_path / "pred" / "pred_002.tif").unlink()
    write_raster(tmp_path / "pred" / "pred_009.tif", np.zeros((32, 32), np.uint8), GEO)
    with pytest.raises(DataError, match=r"no prediction .* 002.*no truth .* 009"):
        evaluate_folders(tmp_path / "pred", tmp_path / "truth")
    assert cli("evaluate", tmp_path / "pred", tmp_path / "truth") == 1
    assert "error:" in capsys.readouterr().err


def test_size_mismatch_and_bad_values(tmp_path, cli, capsys):
    make_pair(tmp_path)
    write_raster(tmp_path / "pred" / "pred_001.tif", np.zeros((16, 32), np.uint8), GEO)
    with pytest.raises(DataError, match="pred_001.tif is 32x16"):
        evaluate_folders(tmp_path / "pred", tmp_path / "truth")
    write_raster(
        tmp_path / "pred" / "pred_001.tif", np.full((32, 32), 3, np.uint8), GEO
    )  # an index, not encoded
    assert cli("evaluate", tmp_path / "pred", tmp_path / "truth") == 1
    err = capsys.readouterr().err
    class_values = "/".join(map(str, CLASS_VALUES))
    assert "pred_001.tif" in err and f"outside {class_values}" in err and "3 (1024 px)" in err


def test_missing_or_empty_folders(tmp_path):
    with pytest.raises(DataError, match="not found"):
        evaluate_folders(tmp_path / "nope", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .tif masks"):
        evaluate_folders(tmp_path / "empty", tmp_path / "empty")


def test_colorize_uses_the_one_palette():
    from glacier.plots import CLASS_COLORS, IGNORE_COLOR, colorize

    rgb = colorize(np.array([[0, 1], [3, 255]], dtype=np.uint8))
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert [tuple(rgb[0, 0]), tuple(rgb[0, 1]), tuple(rgb[1, 0]), tuple(rgb[1, 1])] == [
        CLASS_COLORS[0],
        CLASS_COLORS[1],
        CLASS_COLORS[3],
        IGNORE_COLOR,
    ]
