"""Bad data in, one clear line out: every preprocess / inspect input problem, table-driven.

Each row damages a fresh, real dataset (GeoTIFFs through rasterio, GeoJSON, npy) and runs
the CLI in-process; ``assert_clean_failure`` checks exit status 1, exactly one ``error:``
line naming the culprit, no traceback, and every input file unchanged by hash.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from cli_checks import assert_clean_failure, tree_hashes
from data_factory import make_competition, make_hkh_scenes, make_hkh_slices, write_tif
from rasterio.transform import from_origin

from glacier.data import prepare_output
from glacier.domain import HKH_SENSOR_BANDS

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENE = "LE07_140041_20051012.tif"


def _huge_header(path: Path) -> None:
    """A valid, sparse GeoTIFF whose header says 60000 x 60000 px (a few hundred kB on disk)."""
    profile = dict(driver="GTiff", width=60000, height=60000, count=1, dtype="float32", tiled=True,
                   compress="deflate", sparse_ok=True, crs="EPSG:32644", transform=from_origin(3e5, 3.3e6, 30, 30))  # fmt: skip
    with rasterio.open(path, "w", **profile):
        pass


def _with_inf(path: Path) -> None:
    with rasterio.open(path) as src:
        band = src.read(1)
    band[1, 2:5] = np.inf
    write_tif(path, band)


def _stray_labels(path: Path) -> None:
    with rasterio.open(path) as src:
        labels = src.read(1)
    labels[0, :4] = 86
    write_tif(path, labels)


# (id, damage(train) -> None, extra options, culprit in the error line)
COMPETITION_ROWS = [
    ("band folder missing", lambda t: shutil.rmtree(t / "Band3"), [], "Band3"),
    (
        "huge header",
        lambda t: _huge_header(t / "Band1" / "img002.tif"),
        [],
        "Band1/img002.tif: reading it needs",
    ),
    (
        "inf in a band",
        lambda t: _with_inf(t / "Band4" / "img001.tif"),
        [],
        "Band4/img001.tif: 3 value(s) are infinite",
    ),
    (
        "stray labels",
        lambda t: _stray_labels(t / "labels" / "img003.tif"),
        [],
        "labels/img003.tif: label 1 value(s)",
    ),
    ("bands for competition", lambda t: None, ["--bands", "B1"], "--bands is for hkh"),
    ("mask check for competition", lambda t: None, ["--no-mask-check"], "--no-mask-check is for hkh"),
]


@pytest.mark.parametrize(("damage", "options", "culprit"), [r[1:] for r in COMPETITION_ROWS],
                         ids=[r[0] for r in COMPETITION_ROWS])  # fmt: skip
def test_competition_inputs(tmp_path, cli, capsys, damage, options, culprit):
    train = make_competition(tmp_path / "src", n_images=4, size=(16, 16))
    damage(train)
    argv = ["preprocess", "competition", train, "--out", tmp_path / "prep", "--folds", "2", "-q", *options]
    assert_clean_failure(cli, capsys, argv, culprit=culprit, inputs=[train])
    assert not (tmp_path / "prep").exists() and not list(tmp_path.glob(".prep.tmp-*"))


def _geojson(path: Path, data) -> None:
    path.write_text(json.dumps(data))


def _no_crs(root: Path) -> None:
    path = root / "raster_data" / SCENE
    with rasterio.open(path) as src:
        data = src.read()
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=15,
                       dtype="float32") as dst:  # fmt: skip
        dst.write(data)
        for i, name in enumerate(HKH_SENSOR_BANDS, start=1):
            dst.set_band_description(i, name)


def _swap_polygon_files(root: Path) -> None:
    vectors = root / "vector_data"
    (vectors / "clean.geojson").rename(vectors / "tmp.geojson")
    (vectors / "debris.geojson").rename(vectors / "clean.geojson")
    (vectors / "tmp.geojson").rename(vectors / "debris.geojson")


HKH_ROWS = [
    ("geojson is a list", lambda r: _geojson(r / "vector_data" / "clean.geojson", [1, 2]), [],
     "clean.geojson: holds a JSON list"),
    ("geometry without coordinates", lambda r: _geojson(r / "vector_data" / "debris.geojson",
     {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Polygon"}}]}), [],
     "debris.geojson: feature 0 (Polygon) has no coordinates"),
    ("features is a string", lambda r: _geojson(r / "vector_data" / "clean.geojson",
     {"type": "FeatureCollection", "features": "polygons"}), [], "clean.geojson: \"features\" is a str"),
    ("feature is a string", lambda r: _geojson(r / "vector_data" / "clean.geojson",
     {"type": "FeatureCollection", "features": ["polygon"]}), [], "clean.geojson: feature 0 is a str"),
    ("crs is a string", lambda r: _geojson(r / "vector_data" / "clean.geojson",
     {"type": "FeatureCollection", "crs": "EPSG:4326", "features": []}), [], "clean.geojson: its \"crs\" member"),
    ("raster without CRS", _no_crs, [], f"{SCENE}: the raster has no CRS"),
    ("bands list names no band", lambda r: None, ["--bands", ",,,"], "--bands ',,,'"),
    ("swapped mask channels", _swap_polygon_files, [], "mask channels are probably swapped"),
    ("snap labels for hkh", lambda r: None, ["--snap-labels"], "--snap-labels is for competition"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "options", "culprit"), [r[1:] for r in HKH_ROWS], ids=[r[0] for r in HKH_ROWS]
)
def test_hkh_inputs(tmp_path, cli, capsys, damage, options, culprit):
    root = tmp_path / "raw"
    make_hkh_scenes(root)
    damage(root)
    argv = [
        "preprocess",
        "hkh",
        root,
        "--out",
        tmp_path / "prep",
        "--tile-size",
        "32",
        "--folds",
        "1",
        "-q",
        *options,
    ]
    line = assert_clean_failure(cli, capsys, argv, culprit=culprit, inputs=[root])
    assert not (tmp_path / "prep").exists() and not list(tmp_path.glob(".prep.tmp-*"))
    if "swapped" in culprit:  # the message says how to say otherwise
        assert "--swap-mask-channels" in line and "--no-mask-check" in line


def test_swapped_mask_channels_can_be_swapped_back_or_kept(tmp_path, cli, capsys):
    root = tmp_path / "raw"
    make_hkh_scenes(root)
    _swap_polygon_files(root)
    common = ["--tile-size", "32", "--folds", "1", "-q"]
    assert cli("preprocess", "hkh", root, "--out", tmp_path / "a", *common, "--swap-mask-channels") == 0
    assert "mask check ok" in capsys.readouterr().out
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["class_counts"][1:3] == [550, 100]
    assert cli("preprocess", "hkh", root, "--out", tmp_path / "b", *common, "--no-mask-check") == 0
    assert "mask check off" in capsys.readouterr().out
    # Kept as given: the 100 px debris box is "clean ice" and the 600 px clean box, burnt over it, "debris".
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["class_counts"][1:3] == [50, 600]


def test_slices_with_inf(tmp_path, cli, capsys):
    folder = make_hkh_slices(tmp_path / "slices", scenes=1, per_scene=2, size=16)
    path = folder / "slice_0_img_001.npy"
    image = np.load(path)
    image[3, 3, 0] = -np.inf
    np.save(path, image)
    argv = ["preprocess", "hkh", folder, "--out", tmp_path / "prep", "--folds", "1", "-q"]
    assert_clean_failure(
        cli, capsys, argv, culprit="slice_0_img_001.npy: 1 value(s) are infinite", inputs=[folder]
    )


# ------------------------------------------------------------------ the output folder
def test_input_inside_the_output_is_refused(tmp_path, cli, capsys):
    prep = tmp_path / "prep"
    train = make_competition(tmp_path / "src", n_images=2, size=(16, 16))
    assert cli("preprocess", "competition", train, "--out", prep, "--folds", "2", "-q") == 0
    shutil.move(str(train), prep / "Train")  # the user keeps the input inside the prepared folder
    argv = ["preprocess", "competition", prep / "Train", "--out", prep, "--folds", "2", "-q"]
    assert_clean_failure(cli, capsys, argv, culprit="lies inside --out", inputs=[prep])
    argv = ["preprocess", "competition", prep / "Train", "--out", prep / "Train" / "p", "--folds", "2", "-q"]
    assert_clean_failure(cli, capsys, argv, culprit="--out lies inside the input", inputs=[prep])


def test_only_what_preprocess_wrote_is_replaced(tmp_path, cli, capsys):
    train = make_competition(tmp_path / "src", n_images=2, size=(16, 16))
    prep = tmp_path / "prep"
    assert cli("preprocess", "competition", train, "--out", prep, "--folds", "2", "-q") == 0
    assert (
        cli("preprocess", "competition", train, "--out", prep, "--folds", "2", "-q") == 0
    )  # its own: replaced
    (prep / "notes.txt").write_text("mine")
    argv = ["preprocess", "competition", train, "--out", prep, "--folds", "2", "-q"]
    assert_clean_failure(
        cli, capsys, argv, culprit="holds files preprocess did not write (notes.txt)", inputs=[prep, train]
    )
    (prep / "notes.txt").unlink()
    (prep / "manifest.json").write_text('{"format": "something-else"}')
    assert_clean_failure(
        cli, capsys, argv, culprit="holds files preprocess did not write", inputs=[prep, train]
    )


def test_not_enough_free_space_is_refused_up_front(tmp_path, cli, capsys, monkeypatch):
    train = make_competition(tmp_path / "src", n_images=2, size=(16, 16))
    real = shutil.disk_usage

    def nearly_full(path):
        usage = real(path)
        return usage._replace(free=10 * 2**20)  # 10 MiB free

    monkeypatch.setattr(prepare_output.shutil, "disk_usage", nearly_full)
    argv = ["preprocess", "competition", train, "--out", tmp_path / "prep", "--folds", "2", "-q"]
    line = assert_clean_failure(cli, capsys, argv, culprit="its disk has 0.01 GiB free", inputs=[train])
    assert "the prepared dataset needs" in line and not (tmp_path / "prep").exists()


_FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
from glacier.cli import main
main(sys.argv[1:])
"""


def test_a_full_disk_while_writing_is_one_line_and_leaves_nothing(tmp_path):
    """The arrays are written with plain writes: running out of room is an error, not SIGBUS."""
    train = make_competition(tmp_path / "src", n_images=4, size=(128, 128))  # images.npy ~0.6 MB
    before = tree_hashes([train])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = ["preprocess", "competition", str(train), "--out", str(tmp_path / "prep"), "--folds", "2", "-q"]
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, *argv], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no space left while writing" in errors[0] and "images.npy" in errors[0]
    assert "Traceback" not in proc.stderr and tree_hashes([train]) == before
    assert not (tmp_path / "prep").exists() and not list(tmp_path.glob(".prep.tmp-*"))


def test_stale_temporary_folders_of_dead_runs_are_removed(tmp_path, cli, capsys):
    train = make_competition(tmp_path / "src", n_images=2, size=(16, 16))
    dead = tmp_path / ".prep.tmp-999999999-0123abcd"  # no such process
    dead.mkdir()
    (dead / prepare_output.TEMP_MARKER).write_text("glacier preprocess")
    (dead / "images.npy").write_bytes(b"half written")
    alive = tmp_path / f".prep.tmp-{os.getpid()}-0123abcd"  # a run still going: not touched
    shutil.copytree(dead, alive)
    foreign = tmp_path / ".prep.tmp-999999998-0123abcd"  # not preprocess's: not touched
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    assert cli("preprocess", "competition", train, "--out", tmp_path / "prep", "--folds", "2", "-q") == 0
    out = capsys.readouterr().out
    assert not dead.exists() and alive.is_dir() and (foreign / "thesis.tex").read_text() == "mine"
    assert f"removed the temporary folder of an earlier interrupted run: {dead}" in out
