"""The competition submission: export, the standalone solution.py, its self-check and limits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import segmentation_models_pytorch as smp
import tifffile
import torch
from test_predict import STATS, tiny_model, write_scenes

from glacier.artifacts import EnsembleFolder, EnsembleMember
from glacier.errors import ConfigError, ModelError
from glacier.models import save_model_folder
from glacier.predict import Predictor, band_folders_for, load_models
from glacier.submission import export, export_submission, selfcheck

PY39 = Path("/root/.pyenv/versions/3.9.18/bin/python3.9")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_model_folder(tiny_model(0), folder, normalization=STATS)
    return folder


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory) -> Path:
    return write_scenes(tmp_path_factory.mktemp("scenes"), {"img001.tif": (64, 64), "img002.tif": (70, 90)})


@pytest.fixture(scope="module")
def exported(model_dir, scenes_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("submission")
    report = export_submission(model_dir, out, tta="flip", check_input=scenes_dir)
    return out, report


def test_export_writes_verified_files(exported):
    out, report = exported
    # No staging left; the marker lists what export wrote (glacier/outputs.py).
    assert sorted(p.name for p in out.iterdir()) == [".glacier-output.json", "model.pth", "solution.py"]
    assert report["check_tiles"] == 2 and report["pixels"] == 64 * 64 + 70 * 90
    assert report["tile_ids"] == ["001", "002"]  # maskgeration's keys: the numeric ids only
    assert report["mismatch_fraction"] <= selfcheck.MAX_MISMATCH_FRACTION
    assert report["differing_pixels"] == 0  # fp32 weights: solution.py is glacier, pixel for pixel
    assert report["weights_dtype"] == "float32" and report["seconds_per_tile"] > 0
    assert report["projected_seconds_25_tiles"] > report["load_seconds"]
    # solution.py is the template, verbatim.
    assert (out / "solution.py").read_text() == export.TEMPLATE_PATH.read_text()


def test_model_pth_is_a_plain_dict_that_smp_loads_strictly(exported):
    out, _ = exported
    package = torch.load(out / "model.pth", map_location="cpu", weights_only=True)
    assert package["format"] == "glacier-submission" and package["tta"] == "flip"
    assert package["band_folders"] == ["Band1", "Band2", "Band3", "Band4", "Band5"]
    assert package["class_values"] == [0, 85, 170, 255] and package["stride"] == 8
    member = package["members"][0]
    assert member["mean"] == list(STATS.mean)
    assert not any(key.startswith("boundary_head") for key in member["state_dict"])
    net = smp.create_model(member["architecture"], encoder_weights=None, **member["kwargs"])
    net.load_state_dict(member["state_dict"], strict=True)


def test_solution_main_by_hand_matches_glacier_predict(exported, model_dir, scenes_dir, tmp_path, cli):
    out, _ = exported
    masks = tmp_path / "masks"
    proc = subprocess.run(
        [sys.executable, str(out / "solution.py"), "--imagepath", str(scenes_dir), "--output", str(masks)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert cli("predict", model_dir, scenes_dir, "--out", tmp_path / "pred", "--tta", "flip") == 0
    for name in ("img001.tif", "img002.tif"):
        with rasterio.open(tmp_path / "pred" / name) as src:
            expected = src.read(1)
        got = tifffile.imread(masks / name)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)


def test_export_ensemble_members_in_fp16_via_cli(cli, tmp_path, capsys):
    members = []
    for seed in (1, 2, 3):
        folder = tmp_path / f"m{seed}"
        save_model_folder(tiny_model(seed), folder, normalization=STATS)
        members.append(EnsembleMember(name=f"seed{seed}", model_dir=folder, seed=seed))
    ensemble = EnsembleFolder.write(tmp_path / "ensemble", members).path
    out = tmp_path / "sub"
    assert (
        cli("export-submission", ensemble, "--out", out, "--members", "seed1,seed3", "--fp16", "--no-timing")
        == 0
    )
    printed = capsys.readouterr().out
    assert "2 member(s), float16" in printed and "time: not measured (--no-timing)" in printed
    package = torch.load(out / "model.pth", map_location="cpu", weights_only=True)
    assert [m["name"] for m in package["members"]] == ["seed1", "seed3"]
    assert package["members"][0]["state_dict"]["encoder.conv1.weight"].dtype == torch.float16


def test_over_the_size_limit_is_refused_with_advice(model_dir, tmp_path, monkeypatch, cli, capsys):
    with pytest.raises(ModelError, match=r"MB over the platform's .* fewer members .*--fp16"):
        export_submission(model_dir, tmp_path / "a", half=False, size_limit=1_000_000)
    monkeypatch.setattr(export, "MAX_PACKAGE_BYTES", 1_000_000)
    assert cli("export-submission", model_dir, "--out", tmp_path / "b") == 1
    assert "over the platform's 1 MB limit" in capsys.readouterr().err
    assert not (tmp_path / "b" / "model.pth").exists()


def test_a_wrong_solution_fails_the_self_check_and_writes_nothing(model_dir, tmp_path, monkeypatch):
    broken = tmp_path / "broken_template.py"
    source = export.TEMPLATE_PATH.read_text()
    assert "std = np.where(std > 0, std, 1.0)" in source
    broken.write_text(
        source.replace("std = np.where(std > 0, std, 1.0)", "std = np.where(std > 0, 3 * std, 1.0)")
    )
    monkeypatch.setattr(export, "TEMPLATE_PATH", broken)

    def no_timing(*args, **kwargs):
        raise AssertionError("a failed self-check must not wait for the timing run")

    monkeypatch.setattr(selfcheck, "time_solution", no_timing)
    with pytest.raises(ModelError, match="self-check failed"):
        export_submission(model_dir, tmp_path / "sub", check_tiles=1)
    assert list((tmp_path / "sub").iterdir()) == []


def test_export_refuses_heavy_tta(model_dir, tmp_path):
    with pytest.raises(ConfigError, match="timed out"):
        export_submission(model_dir, tmp_path, tta="d4")


def test_source_check_rejects_foreign_imports_and_new_syntax(tmp_path):
    selfcheck.check_solution_source(export.TEMPLATE_PATH)
    bad = tmp_path / "solution.py"
    bad.write_text("import glacier\n")
    with pytest.raises(ModelError, match="glacier"):
        selfcheck.check_solution_source(bad)
    bad.write_text("match 1:\n    case 1:\n        pass\n")
    with pytest.raises(ModelError, match="Python 3.9"):
        selfcheck.check_solution_source(bad)


@pytest.mark.skipif(not PY39.exists(), reason="no Python 3.9 interpreter here")
def test_template_compiles_under_python_3_9():
    proc = subprocess.run(
        [
            str(PY39),
            "-c",
            "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')",
            str(export.TEMPLATE_PATH),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------- the platform's smp 0.3.4
SMP_034_WHEELS = [
    "segmentation-models-pytorch==0.3.4",
    "timm==0.9.7",
    "pretrainedmodels==0.7.4",
    "efficientnet-pytorch==0.7.1",
    "six==1.16.0",
]


@pytest.mark.slow
def test_exported_solution_runs_with_smp_0_3_4(exported, model_dir, scenes_dir, tmp_path):
    """Download smp 0.3.4 and its pure-Python dependencies (no torch) and run solution.py with them first on the path."""
    wheels = tmp_path / "wheels"
    site = tmp_path / "site"
    for requirement in SMP_034_WHEELS:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), requirement],
            check=True,
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--no-compile", "-t", str(site)]
        + [str(p) for p in sorted(wheels.iterdir())],
        check=True,
    )
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    out, _ = exported
    # The state dicts load strictly into smp 0.3.4's own classes.
    probe = (
        "import torch, segmentation_models_pytorch as smp\n"
        "assert smp.__version__ == '0.3.4', smp.__version__\n"
        "p = torch.load('model.pth', map_location='cpu')\n"
        "for m in p['members']:\n"
        "    net = smp.create_model(m['architecture'], encoder_weights=None, **m['kwargs'])\n"
        "    net.load_state_dict(m['state_dict'], strict=True)\n"
        "print('strict load ok', smp.__file__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=out, env={**os.environ, **env}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert str(site) in proc.stdout
    # And solution.py's masks there equal glacier predict's.
    run = selfcheck.run_solution(out, scenes_dir, env=env)
    assert run["smp"] == "0.3.4"
    predictor = Predictor(load_models(model_dir), tta="flip", device="cpu", tile_size=None)
    reference = selfcheck.reference_masks(predictor, scenes_dir, band_folders_for(predictor.bands))
    comparison = selfcheck.compare_masks(run["masks"], reference)
    assert comparison["mismatch_fraction"] <= selfcheck.MAX_MISMATCH_FRACTION, comparison
