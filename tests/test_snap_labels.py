"""Stray label values: refused with their counts, or snapped to the nearest class value."""

from __future__ import annotations

import json

import numpy as np
import rasterio
from data_factory import make_competition, write_tif

from glacier.domain import snap_to_class_values


def test_snapping_goes_to_the_nearest_class_value():
    values = np.array([0, 42, 43, 84, 85, 86, 127, 128, 212, 213, 254, 255], np.uint8)
    snapped, moved = snap_to_class_values(values)
    assert snapped.tolist() == [0, 0, 85, 85, 85, 85, 85, 170, 170, 255, 255, 255]
    assert moved == 9 and snapped.dtype == np.uint8
    assert snap_to_class_values(np.array([84.6, -3.0, 300.0]))[0].tolist() == [85, 0, 255]


def test_preprocess_refuses_then_snaps_and_reports(tmp_path, cli, capsys):
    train = make_competition(tmp_path / "src", n_images=3, size=(16, 16))
    path = train / "labels" / "img002.tif"
    with rasterio.open(path) as src:
        labels = src.read(1)
    labels[0, :5] = 84  # resized labels: a blurred edge
    labels[1, :2] = 169
    write_tif(path, labels)
    argv = ["preprocess", "competition", train, "--folds", "3", "-q"]
    assert cli(*argv, "--out", tmp_path / "a") == 1
    err = capsys.readouterr().err
    assert "img002.tif: label 2 value(s) outside 0/85/170/255 in 7 pixel(s): 84 (5 px), 169 (2 px)" in err
    assert "--snap-labels" in err and not (tmp_path / "a").exists()
    assert cli(*argv, "--out", tmp_path / "b", "--snap-labels") == 0
    assert "labels: 7 pixels snapped to the nearest class value (--snap-labels)" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["labels_snapped"] == 7 and manifest["options"]["snap_labels"] is True
    image = next(i for i in manifest["images"] if i["id"] == "002")
    expected = np.bincount(
        np.searchsorted([0, 85, 170, 255], snap_to_class_values(labels)[0]).ravel(), minlength=4
    )
    assert image["class_counts"] == expected.tolist()
