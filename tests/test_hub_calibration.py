"""A decision rule survives push and pull (real HTTP to tests/hub_server.py): a model folder's
in config.json, an ensemble's in ensemble.json, and predictions from the Hub id apply it."""

from __future__ import annotations

import json

import numpy as np
from test_calibrated_prediction import RULE, ensemble_with
from test_hub import _save_model, hub  # noqa: F401 (the fake Hub fixture)
from test_predict import write_scenes

from glacier.artifacts import ModelFolder, open_artifact
from glacier.data.raster import read_single_band
from glacier.decisions.loading import artifact_calibration


def test_a_model_folders_calibration_survives_push_and_pull(hub, tmp_path, cli):  # noqa: F811
    _save_model(tmp_path / "model")
    single = RULE.replace(weights=None, temperature=1.0)
    ModelFolder(tmp_path / "model").write_calibration(single.to_dict())
    assert cli("push", tmp_path / "model", "alice/calibrated") == 0
    stored = json.loads(hub.files("alice/calibrated")["config.json"])
    assert stored["_glacier"]["calibration"] == single.to_dict()
    assert cli("pull", "alice/calibrated", "--out", tmp_path / "pulled") == 0
    assert artifact_calibration(ModelFolder(tmp_path / "pulled")) == single


def test_an_ensembles_calibration_survives_push_and_pull_and_is_applied(hub, tmp_path, cli):  # noqa: F811
    ensemble = ensemble_with(tmp_path, RULE)
    assert cli("push", ensemble, "alice/calibrated-ensemble") == 0
    pulled = open_artifact("alice/calibrated-ensemble")
    assert artifact_calibration(pulled) == RULE
    scenes = write_scenes(tmp_path / "scenes", {"img001.tif": (64, 64)})
    for source, out in ((ensemble, "local"), ("alice/calibrated-ensemble", "hub")):
        assert cli("predict", source, scenes, "--out", tmp_path / out, "--device", "cpu") == 0
    local, _ = read_single_band(tmp_path / "local" / "img001.tif")
    from_hub, _ = read_single_band(tmp_path / "hub" / "img001.tif")
    np.testing.assert_array_equal(local, from_hub)
    assert (
        cli("predict", ensemble, scenes, "--out", tmp_path / "plain", "--device", "cpu", "--no-calibration")
        == 0
    )
    assert (read_single_band(tmp_path / "plain" / "img001.tif")[0] != local).any()
