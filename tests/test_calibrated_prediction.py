"""A stored decision rule is applied identically by `glacier predict` and the exported
solution.py (0 differing pixels), and `--no-calibration` gives back the plain argmax."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_predict import STATS, tiny_model, write_scenes

from glacier.artifacts import EnsembleFolder, EnsembleMember, ModelFolder
from glacier.data.raster import read_single_band
from glacier.decisions.loading import calibrated_models
from glacier.decisions.rule import Calibration
from glacier.models import save_model_folder
from glacier.predict import Predictor, load_models
from glacier.submission import export_submission
from glacier.submission.export import shipped_models_words

RULE = Calibration(
    log_bias=(0.0, 1.0, 1.5, -0.5),
    temperature=0.7,
    min_component=(0, 24, 24, 24),
    max_hole=(0, 16, 0, 0),
    combine="probability",
    weights={"m0": 1.0, "m1": 2.0, "m2": 0.0},
)


def ensemble_with(base: Path, rule: Calibration | None, name: str = "ensemble") -> Path:
    members = []
    for seed in range(3):
        folder = base / f"src_{name}_{seed}"
        save_model_folder(tiny_model(seed), folder, normalization=STATS)
        members.append(EnsembleMember(name=f"m{seed}", model_dir=folder, seed=seed, fold=0))
    extra = {"calibration": None if rule is None else rule.to_dict()}
    return EnsembleFolder.write(base / name, members, extra=extra).path


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    return write_scenes(tmp_path_factory.mktemp("scenes"), {"img001.tif": (64, 64), "img002.tif": (70, 90)})


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> Path:
    return ensemble_with(tmp_path_factory.mktemp("ens"), RULE)


def masks_of(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_single_band(p)[0] for p in sorted(folder.glob("*.tif"))}


def test_predict_and_solution_apply_the_rule_identically(ensemble, scenes, tmp_path, cli):
    out = tmp_path / "submission"
    report = export_submission(ensemble, out, tta="flip", check_input=scenes, timing=False)
    assert report["differing_pixels"] == 0 and report["pixels"] == 64 * 64 + 70 * 90
    assert report["members"] == ["m0", "m1"] and report["members_left_out"] == ["m2"]  # weight 0
    package = torch.load(out / "model.pth", map_location="cpu", weights_only=True)
    assert package["format_version"] == 2
    assert (
        package["calibration"]["log_bias"] == list(RULE.log_bias)
        and package["calibration"]["temperature"] == 0.7
    )
    assert [m["weight"] for m in package["members"]] == [1.0, 2.0]

    assert (
        cli("predict", ensemble, scenes, "--out", tmp_path / "glacier", "--tta", "flip", "--device", "cpu")
        == 0
    )
    by_hand = subprocess.run(
        [
            sys.executable,
            str(out / "solution.py"),
            "--imagepath",
            str(scenes),
            "--output",
            str(tmp_path / "solution"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert by_hand.returncode == 0, by_hand.stderr[-2000:]
    ours, theirs = masks_of(tmp_path / "glacier"), masks_of(tmp_path / "solution")
    assert sorted(ours) == ["img001.tif", "img002.tif"]
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])


def test_no_calibration_restores_the_plain_argmax(ensemble, scenes, tmp_path, cli, capsys):
    assert (
        cli("predict", ensemble, scenes, "--out", tmp_path / "plain", "--device", "cpu", "--no-calibration")
        == 0
    )
    assert "calibration: none" in capsys.readouterr().out
    assert cli("predict", ensemble, scenes, "--out", tmp_path / "calibrated", "--device", "cpu") == 0
    plain, calibrated = masks_of(tmp_path / "plain"), masks_of(tmp_path / "calibrated")
    reference = Predictor(load_models(ensemble), device="cpu")  # glacier 0.1's path: all members, argmax
    from glacier.data.competition import find_scenes, read_scene_image

    differing = 0
    for scene in find_scenes(scenes, require_labels=False):
        name = scene.band_paths[0].name
        np.testing.assert_array_equal(plain[name], reference.predict_mask(read_scene_image(scene)[0]))
        differing += int((plain[name] != calibrated[name]).sum())
    assert differing > 100  # the rule changes decisions: the test above compares something


def test_export_without_calibration_ships_the_argmax(ensemble, scenes, tmp_path):
    report = export_submission(
        ensemble, tmp_path / "sub", tta="none", check_input=scenes, calibration=False, timing=False
    )
    package = torch.load(tmp_path / "sub" / "model.pth", map_location="cpu", weights_only=True)
    assert package["calibration"] is None and report["members"] == ["m0", "m1", "m2"]
    assert report["differing_pixels"] == 0 and report["calibration"].startswith("none")


def test_a_model_folders_rule_lives_in_config_json(tmp_path, scenes, cli):
    folder = tmp_path / "model"
    save_model_folder(tiny_model(4), folder, normalization=STATS)
    single = RULE.replace(weights=None, temperature=1.0)
    ModelFolder(folder).write_calibration(single.to_dict())
    assert ModelFolder(folder).meta.calibration == single.to_dict()
    assert calibrated_models(folder).calibration == single
    report = export_submission(folder, tmp_path / "sub", tta="flip", check_input=scenes, timing=False)
    assert report["differing_pixels"] == 0 and report["calibration"] == single.describe()
    ModelFolder(folder).write_calibration(None)
    assert calibrated_models(folder).calibration is None


def test_a_soup_rule_predicts_with_one_averaged_model(tmp_path, scenes, cli, capsys):
    soup_rule = Calibration(log_bias=(0.0, 0.5, 0.0, 0.0), min_component=(0, 8, 8, 8), combine="soup")
    ensemble = ensemble_with(tmp_path, soup_rule, name="soup_ensemble")
    assert cli("predict", ensemble, scenes, "--out", tmp_path / "p", "--device", "cpu") == 0
    assert "3 member(s), soup" in capsys.readouterr().out
    report = export_submission(ensemble, tmp_path / "sub", tta="flip", check_input=scenes, timing=False)
    assert report["members"] == ["soup"] and report["differing_pixels"] == 0
    # The summary still names what went into the soup: every member, none left out.
    assert (
        sorted(report["souped"]) == sorted(EnsembleFolder(ensemble).members())
        and not report["members_left_out"]
    )
    assert shipped_models_words(report) == "one weight soup of 3 members"
