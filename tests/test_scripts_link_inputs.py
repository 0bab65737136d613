"""scripts/link_inputs.sh: the set-up's search for the inputs, as Kaggle mounts them."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "link_inputs.sh"


def _run(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KAGGLE_INPUT": str(tmp_path / "input"),
        "WORK_DIR": str(tmp_path / "working"),
        **extra,
    }
    for name in ("COMPETITION_SRC", "HKH_SRC", "DATA_DIR"):
        if name not in extra:
            env.pop(name, None)
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def _train_folder(root: Path) -> Path:
    train = root / "Train"
    for folder in ("Band1", "Band2", "labels"):
        (train / folder).mkdir(parents=True)
        (train / folder / "img001.tif").write_bytes(b"tif")
    return train


def test_finds_a_train_folder_and_raw_hkh_scenes(tmp_path):
    train = _train_folder(tmp_path / "input" / "glacierhack-2025")
    glacier_data = tmp_path / "input" / "hkh-subset" / "glacier_data"
    (glacier_data / "raster_data").mkdir(parents=True)
    (glacier_data / "vector_data").mkdir()
    proc = _run(tmp_path)
    data = tmp_path / "working" / "data"
    assert (data / "competition").resolve() == train.resolve()
    assert (data / "hkh").resolve() == glacier_data.resolve()
    assert f"competition data: {train}" in proc.stdout and f"HKH data: {glacier_data}" in proc.stdout


@pytest.mark.skipif(shutil.which("unzip") is None, reason="unzip not installed")
def test_unzips_train2_zip_and_finds_lila_slices(tmp_path):
    source = _train_folder(tmp_path / "zip-source")
    archive = tmp_path / "input" / "competition" / "train2.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(source.parent).as_posix())
    slices = tmp_path / "input" / "hkh" / "glacier_data" / "slices"
    slices.mkdir(parents=True)
    _run(tmp_path)
    data = tmp_path / "working" / "data"
    assert (data / "competition").resolve() == (data / "Train").resolve()
    assert (data / "competition" / "labels" / "img001.tif").read_bytes() == b"tif"
    assert (data / "hkh").resolve() == slices.resolve()


def test_nothing_found_is_reported_not_an_error(tmp_path):
    proc = _run(tmp_path)  # KAGGLE_INPUT does not even exist
    assert "competition data: no Train/ or train2.zip" in proc.stderr
    assert "HKH data: no raster_data/ or slices/" in proc.stderr
    assert not (tmp_path / "working" / "data" / "competition").exists()


def test_explicit_sources_win(tmp_path):
    _train_folder(tmp_path / "input" / "found")
    chosen = _train_folder(tmp_path / "elsewhere")
    split = tmp_path / "hkh" / "glacier_data" / "splits" / "train"
    split.mkdir(parents=True)
    _run(tmp_path, COMPETITION_SRC=str(chosen), HKH_SRC=str(split))
    data = tmp_path / "working" / "data"
    assert (data / "competition").resolve() == chosen.resolve()
    assert (data / "hkh").resolve() == split.resolve()
