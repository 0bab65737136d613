"""`glacier inspect`: the real clip, competition folders with stray labels, inf and nodata, HKH checks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from data_factory import make_competition, make_hkh_slices, write_tif

from glacier.audit import inspect_source
from glacier.errors import DataError

CLIP = "LE07_134040_20070922_clip.tif"


def _band(report, name):
    return next(b.to_dict() for b in report.bands if b.name.startswith(name))


def test_real_clip(hkh_fixtures, tmp_path, cli, capsys):
    root = tmp_path / "raw"
    (root / "raster_data").mkdir(parents=True)
    (root / "raster_data" / CLIP).symlink_to(hkh_fixtures / CLIP)
    (root / "vector_data").mkdir()
    for name in ("clean", "debris"):
        (root / "vector_data" / f"{name}.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    assert cli("inspect", root, "--json", tmp_path / "report.json") == 0
    text = capsys.readouterr().out
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["layout"] == "hkh raw scenes" and data["ids"] == [CLIP[:-4]]
    assert data["sizes"] == [{"height": 169, "width": 139, "images": 1}]
    assert data["fill_fraction"] == pytest.approx(8449 / (169 * 139), abs=1e-6)
    tir = next(b for b in data["bands"] if b["band"] == "B6_VCID_1 (tir)")
    assert (tir["min"], tir["max"], tir["dtype"], tir["nodata"]) == (68.0, 122.0, "float32", None)
    blue = next(b for b in data["bands"] if b["band"] == "B1 (blue)")
    assert blue["saturation_level"] == 255 and blue["saturated_fraction"] == pytest.approx(0.0832, abs=1e-4)
    assert blue["p99"] == 255.0 and blue["inf_fraction"] == 0 and blue["nan_fraction"] == 0
    subjects = [f["subject"] for f in data["findings"]]
    assert subjects[0] == "fill" and "B1 (blue)" in subjects
    assert "fill: 35.97% of pixels" in text and "saturated: Landsat 7 saturates over snow" in text


def test_competition_stray_labels_inf_and_nodata(tmp_path):
    train = make_competition(tmp_path / "src", n_images=4, size=(16, 16))
    labels = np.zeros((16, 16), np.uint8)
    labels[0, :3] = 84
    labels[1, 0] = 171
    write_tif(train / "labels" / "img002.tif", labels)
    band = np.full((16, 16), 7.0, np.float32)
    band[2, 2:4] = np.inf
    write_tif(train / "Band3" / "img003.tif", band)
    nodata = np.full((16, 16), 5, np.int32)
    nodata[0] = -9999
    write_tif(train / "Band1" / "img004.tif", nodata, nodata=-9999)
    report = inspect_source(train)
    lines = [f.line() for f in report.findings]
    assert any(
        "2 value(s) outside 0/85/170/255 in 4 pixel(s): 84 (3 px), 171 (1 px)" in line
        and "--snap-labels" in line
        for line in lines
    )
    assert any(
        line.startswith("Band3 (red): 2 infinite value(s) in 1 file(s), e.g.") and "img003.tif" in line
        for line in lines
    )
    assert any(line.startswith("Band1 (blue): nodata tag -9999") for line in lines)
    assert report.fill_pixels == 16 and report.images_with_fill == 1  # the nodata row of img004
    assert _band(report, "Band3")["inf_fraction"] == pytest.approx(2 / (4 * 256), abs=1e-6)
    assert report.labels["84 (stray)"] == 3 and report.labels["0 background"] > 0


def test_sampling_reads_only_some_images_and_test_sets_have_no_labels(tmp_path):
    train = make_competition(tmp_path / "src", n_images=6, size=(16, 16))
    shutil.rmtree(train / "labels")
    report = inspect_source(train, max_images=2)
    assert report.images_read == 2 and report.sampling == "2 of 6 images read, spread evenly"
    assert len(report.ids) == 6 and report.labels is None
    assert any(f.subject == "labels" and "no labels/" in f.finding for f in report.findings)


def test_hkh_slices_swapped_mask_channels_are_a_finding(tmp_path):
    folder = make_hkh_slices(tmp_path / "slices", scenes=2, per_scene=2, size=32)
    assert inspect_source(folder).mask_check.status == "ok"
    for mask_path in folder.glob("slice_*_mask_*.npy"):
        mask = np.load(mask_path)
        np.save(mask_path, mask[..., [0, 2, 1]])  # clean and debris channels the other way round
    report = inspect_source(folder)
    assert report.mask_check.status == "swapped"
    assert any(f.subject == "mask channels" and "--swap-mask-channels" in f.action for f in report.findings)


def test_not_a_dataset(tmp_path, cli, capsys):
    with pytest.raises(DataError, match="also reads HKH slices"):
        inspect_source(tmp_path)
    assert cli("inspect", tmp_path / "nope") == 1
    assert "folder not found" in capsys.readouterr().err
    train = make_competition(tmp_path / "src", n_images=1, size=(8, 8))
    assert cli("inspect", train, "--json", tmp_path) == 1
    assert "is a folder" in capsys.readouterr().err
