"""Which final ensembles a CV ensemble's calibration holds for (glacier/training/all_data.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from glacier.errors import ConfigError
from glacier.training.all_data import CvSource, carried_calibration, kept_seeds


def ensemble_source(unit_weights: dict[str, float]) -> CvSource:
    rule = {"log_bias": [0.0, 0.5, 1.0, 0.0], "fitted": {"unit_weights": unit_weights}}
    seeds = sorted(int(u.removeprefix("seed")) for u in unit_weights)
    return CvSource(Path("runs/ens"), "ensemble", {"samples": 96.0}, rule, seeds)


def test_a_seed_weighed_zero_need_not_be_trained():
    source = ensemble_source({"seed1": 2.0, "seed2": 0.0})
    assert kept_seeds(source) == [1]
    assert carried_calibration(source, [1])["weights"] == {"seed1_all": 2.0}
    # Training it as well is allowed; it keeps its weight of 0.
    assert carried_calibration(source, [1, 2])["weights"] == {"seed1_all": 2.0, "seed2_all": 0.0}
    assert carried_calibration(source, [1])["fitted"]["carried_from"] == "runs/ens"


def test_a_seed_the_rule_did_not_weigh_is_refused_with_the_seeds_to_train():
    source = ensemble_source({"seed1": 2.0, "seed2": 0.0})
    with pytest.raises(ConfigError, match=r"--seeds 1\)"):
        carried_calibration(source, [2])
    unequal = ensemble_source({"seed1": 2.0, "seed2": 1.0})
    assert kept_seeds(unequal) == [1, 2]
    with pytest.raises(ConfigError, match=r"--seeds 1,2\)"):
        carried_calibration(unequal, [1])


def test_equal_weights_hold_for_any_seeds_of_the_same_number():
    source = ensemble_source({"seed1": 1.0, "seed2": 1.0})
    assert carried_calibration(source, [7, 8])["weights"] == {"seed7_all": 1.0, "seed8_all": 1.0}
