"""The sampler-prior correction: a balanced sampler's class shares taken back out of the
decisions (glacier/decisions/prior.py), written into every model folder a run saves."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from training_data import prepared_competition, tiny_run

from glacier.artifacts.model_config import GLACIER_KEY
from glacier.data.prepared import PreparedDataset
from glacier.decisions.loading import calibrated_models
from glacier.decisions.prior import drawn_counts_from_rows, prior_log_bias, sampler_prior_rule
from glacier.decisions.rule import SAMPLER_PRIOR
from glacier.domain import CLASS_NAMES


def test_the_bias_is_the_log_ratio_of_shares_relative_to_background():
    bias = prior_log_bias([60, 30, 10, 0], [50, 30, 20, 0])
    assert bias[0] == 0.0
    assert bias[1] == pytest.approx(math.log(0.3 / 0.3) - math.log(0.6 / 0.5))
    assert bias[2] == pytest.approx(math.log(0.1 / 0.2) - math.log(0.6 / 0.5))
    assert bias[3] == 0.0  # no lake in either count: no information, background's bias


def test_a_sampler_that_draws_what_the_data_holds_changes_nothing():
    assert prior_log_bias([600, 300, 100, 7], [6, 3, 1, 0.07]) == pytest.approx((0.0,) * 4, abs=1e-12)


def test_the_rule_makes_the_bayes_decision_under_the_training_shares():
    # A pixel the network, trained on 50/50 draws, finds slightly more likely debris than
    # background; where background is 4x as common as debris, Bayes says background.
    rule = sampler_prior_rule([80, 0, 20, 0], [50, 0, 50, 0])
    probs = np.array([0.45, 0.0, 0.55, 0.0], dtype=np.float32).reshape(4, 1, 1)
    assert probs.argmax(0)[0, 0] == 2 and rule.decide(probs)[0, 0] == 0
    # ...but a confident debris pixel stays debris (0.85 / 0.15 * 1/4 > 1).
    sure = np.array([0.15, 0.0, 0.85, 0.0], dtype=np.float32).reshape(4, 1, 1)
    assert rule.decide(sure)[0, 0] == 2
    assert rule.fitted["method"] == SAMPLER_PRIOR and rule.fitted["drawn_shares"]["debris"] == 0.5
    assert rule.describe().startswith("sampler-prior correction, log-bias +0.00, +0.00, -1.39, +0.00;")


def test_bad_counts_are_refused():
    with pytest.raises(ValueError):
        prior_log_bias([1, 2, 3, 4], [1, 2, 3])
    with pytest.raises(ValueError):
        prior_log_bias([0, 0, 0, 0], [1, 2, 3, 4])


def _row(epoch: int, shares) -> dict[str, str]:
    return {"epoch": str(epoch), **{f"drawn_{c}": str(s) for c, s in zip(CLASS_NAMES, shares, strict=True)}}


def test_drawn_counts_sum_the_epochs_up_to_the_model():
    rows = [_row(1, [0.5, 0.3, 0.2, 0.0]), _row(2, [0.4, 0.4, 0.2, 0.0]), _row(3, [0.0, 0.0, 1.0, 0.0])]
    assert drawn_counts_from_rows(rows, 2) == pytest.approx([0.9, 0.7, 0.4, 0.0])
    assert drawn_counts_from_rows([{"epoch": "1", "train_loss": "0.3"}], 1) is None  # an older run
    assert drawn_counts_from_rows(rows, 0) is None


def _finetune(cli, prep, run, settings: dict) -> int:
    """``glacier finetune --config tiny`` on fold 0 with ``--set key=value`` for each setting."""
    sets = [a for key, value in settings.items() for a in ("--set", f"{key}={value}")]
    return cli(*tiny_run("finetune", prep, run, "--fold", "0", *sets))


def _model_rule(model_dir) -> dict | None:
    return json.loads((model_dir / "config.json").read_text())[GLACIER_KEY]["calibration"]


def test_a_run_saves_the_correction_of_what_it_drew(tmp_path, cli):
    prep = prepared_competition(tmp_path)
    run = tmp_path / "run"
    settings = {"training.epochs": 2, "training.batch_size": 4, "training.sampler.samples_per_epoch": 8}
    assert _finetune(cli, prep, run, {**settings, "training.sampler.rare_crop_p": 1.0}) == 0
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    drawn = np.sum([[float(r[f"drawn_{c}"]) for c in CLASS_NAMES] for r in rows], axis=0)
    prepared = PreparedDataset.open(prep)
    train_idx, _ = prepared.train_val_indices(0)
    train = prepared.tile_class_counts[train_idx].sum(axis=0)
    for model_dir in (run / "last", run / "best"):
        saved = _model_rule(model_dir)
        assert saved is not None and saved["fitted"]["method"] == SAMPLER_PRIOR
    expected = prior_log_bias(train, drawn)  # last/ has seen every epoch
    np.testing.assert_allclose(_model_rule(run / "last")["log_bias"], expected, atol=1e-6)
    # Every crop centred on debris: debris is drawn far above its share, so it is pushed down.
    assert expected[CLASS_NAMES.index("debris")] < -0.1
    assert calibrated_models(run / "last").calibration.fitted["method"] == SAMPLER_PRIOR
    assert calibrated_models(run / "last", calibration=False).calibration is None


def test_the_correction_can_be_switched_off(tmp_path, cli):
    prep = prepared_competition(tmp_path, n_images=6)
    run = tmp_path / "run"
    settings = {"training.epochs": 1, "training.batch_size": 4, "training.sampler.samples_per_epoch": 4}
    assert _finetune(cli, prep, run, {**settings, "training.sampler.prior_correction": "false"}) == 0
    assert _model_rule(run / "best") is None and _model_rule(run / "last") is None
