"""The decision rule and its fit on out-of-fold predictions: MCC as sklearn computes it,
biases that a constructed case needs, post-processing, greedy selection, and the exported
solution.py's copy of the rule giving the same pixels."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import matthews_corrcoef

from glacier.decisions import calibrate, rule
from glacier.decisions.calibrate import OofArrays, fit_calibration, fit_min_component, pixel_mcc, score
from glacier.decisions.fitting import fit_rule
from glacier.decisions.rule import Calibration
from glacier.decisions.select import (
    choice_words,
    choose_combination,
    combination_row,
    cross_fitted_choice,
    cross_fitted_confusions,
    fixed_weights,
    greedy_selection,
    mcc_difference_se,
    shipped_score,
)
from glacier.domain import IGNORE_INDEX
from glacier.errors import ModelError
from glacier.submission import export

K = 4


def blocky_labels(rng, tiles: int = 8, size: int = 48, block: int = 8) -> np.ndarray:
    """Class labels in blocks (so components exist), some pixels ignored."""
    coarse = rng.choice(K, size=(tiles, size // block, size // block), p=[0.55, 0.25, 0.15, 0.05])
    labels = np.repeat(np.repeat(coarse, block, axis=1), block, axis=2).astype(np.uint8)
    labels[:, :3, :] = IGNORE_INDEX  # a padded strip
    return labels


def noisy_probabilities(rng, labels, signal=2.0, noise=1.0, shift=None) -> np.ndarray:
    """(K, N, T, T) float32 softmax of logits that favour the true class; ``shift`` adds to
    each class's logit (a miscalibrated model)."""
    logits = rng.normal(0.0, noise, size=(K, *labels.shape)).astype(np.float32)
    for k in range(K):
        logits[k] += signal * (labels == k)
        if shift is not None:
            logits[k] += shift[k]
    probs = np.exp(logits - logits.max(axis=0))
    return (probs / probs.sum(axis=0)).astype(np.float32)


def arrays(units, labels) -> OofArrays:
    return OofArrays(list(units), labels, np.arange(len(labels)) % 4, [f"u{i}" for i in range(len(units))])


def sklearn_mcc(labels, indices) -> float:
    valid = labels != IGNORE_INDEX
    return matthews_corrcoef(labels[valid].ravel(), indices[valid].ravel())


def test_pooled_mcc_is_sklearns():
    rng = np.random.default_rng(0)
    labels = blocky_labels(rng)
    probs = noisy_probabilities(rng, labels)
    indices = probs.argmax(axis=0)
    assert score(probs, labels, Calibration.identity())["mcc"] == pytest.approx(
        sklearn_mcc(labels, indices), abs=1e-12
    )
    valid = labels != IGNORE_INDEX
    assert pixel_mcc(labels[valid], indices[valid]) == pytest.approx(sklearn_mcc(labels, indices), abs=1e-12)


def test_bias_fit_recovers_a_class_the_model_underrates():
    """A model whose debris logit is 2.5 too low: argmax hardly predicts debris; the fitted
    log-bias gives it back, and the MCC (equal to sklearn's) rises clearly."""
    rng = np.random.default_rng(1)
    labels = blocky_labels(rng)
    probs = noisy_probabilities(rng, labels, shift=(0.0, 0.0, -2.5, 0.0))
    fitted, report = fit_calibration(arrays([probs], labels), postprocess=False)
    assert fitted.log_bias[0] == 0.0 and fitted.log_bias[2] > 1.5
    assert fitted.temperature == 1.0  # one model: a temperature changes no decision
    after = np.stack([fitted.decide(probs[:, i]) for i in range(probs.shape[1])])
    assert report["oof_mcc_after"] == pytest.approx(sklearn_mcc(labels, after), abs=1e-12)
    assert report["oof_mcc_after"] > report["oof_mcc_before"] + 0.05
    assert report["iou_after"]["debris"] > 2 * report["iou_before"]["debris"]


def test_a_calibrated_model_needs_no_bias():
    rng = np.random.default_rng(2)
    labels = blocky_labels(rng)
    probs = noisy_probabilities(rng, labels, signal=3.0)
    fitted, report = fit_calibration(arrays([probs], labels), postprocess=False)
    assert max(abs(b) for b in fitted.log_bias) <= 0.5
    assert report["oof_mcc_after"] >= report["oof_mcc_before"]


def test_identity_rule_is_the_argmax():
    rng = np.random.default_rng(3)
    probs = noisy_probabilities(rng, blocky_labels(rng, tiles=1))[:, 0]
    np.testing.assert_array_equal(Calibration.identity().decide(probs), probs.argmax(axis=0))


def test_small_components_go_to_the_next_best_class_and_holes_are_filled():
    indices = np.zeros((12, 12), dtype=np.uint8)
    indices[2:9, 2:9] = 1  # a glacier of 49 px ...
    indices[5, 5] = 2  # ... with a one-pixel debris hole
    indices[0, 10:12] = 3  # a 2-px lake on the border
    scores = np.zeros((K, 12, 12), dtype=np.float32)
    scores[0] = 1.0
    scores[3, 0, 10:12] = 0.5  # second best for the lake pixels: background
    out = rule.remove_small_components(indices, scores, (0, 0, 0, 3))
    assert (out[0, 10:12] == 0).all() and (out[2:9, 2:9] == indices[2:9, 2:9]).all()
    filled = rule.fill_holes(out, (0, 2, 0, 0))
    assert filled[5, 5] == 1  # enclosed by glacier, 1 px < 2
    edge = np.ones((6, 6), dtype=np.uint8)
    edge[0, 2] = 0  # touches the border: not a hole
    assert rule.fill_holes(edge, (0, 10, 0, 0))[0, 2] == 0


def test_fast_component_search_matches_the_rule():
    """The search's vectorised replacement equals what remove_small_components does."""
    rng = np.random.default_rng(4)
    labels = blocky_labels(rng)
    probs = noisy_probabilities(rng, labels, noise=1.5)
    scores = rule.class_scores(probs, (0.0,) * K)
    sizes, searched = fit_min_component(scores, scores.argmax(axis=0).astype(np.uint8), labels)
    assert any(sizes), "iid noise on blocky labels: small components should be worth removing"
    applied = np.stack(
        [
            rule.remove_small_components(scores[:, i].argmax(axis=0).astype(np.uint8), scores[:, i], sizes)
            for i in range(len(labels))
        ]
    )
    np.testing.assert_array_equal(searched, applied)


def test_postprocessing_is_kept_only_when_it_helps_and_scores_with_the_rule():
    rng = np.random.default_rng(5)
    labels = blocky_labels(rng)
    probs = noisy_probabilities(rng, labels, noise=1.5)
    fitted, report = fit_calibration(arrays([probs], labels))
    assert report["stages"]["postprocess"] > report["stages"]["log_bias"]
    assert report["oof_mcc_after"] == pytest.approx(score(probs, labels, fitted)["mcc"], abs=1e-12)


def test_temperature_is_fitted_only_for_probability_means():
    rng = np.random.default_rng(6)
    labels = blocky_labels(rng)
    units = [noisy_probabilities(rng, labels) for _ in range(2)]
    _, report = fit_calibration(arrays(units, labels), postprocess=False)
    assert set(report["temperature_scan"]) == {str(t) for t in calibrate.TEMPERATURES}
    _, report = fit_calibration(arrays(units, labels), combine_rule="log_probability", postprocess=False)
    assert list(report["temperature_scan"]) == ["1.0"]


def test_greedy_selection_leaves_out_the_bad_unit():
    rng = np.random.default_rng(7)
    labels = blocky_labels(rng)
    good_a = noisy_probabilities(rng, labels, signal=2.0)
    good_b = noisy_probabilities(rng, labels, signal=2.0)
    bad = noisy_probabilities(rng, labels, signal=0.1)
    weights, steps = greedy_selection(arrays([good_a, bad, good_b], labels))
    assert weights[1] == 0 and weights[0] > 0 and weights[2] > 0
    assert steps[0]["added"] in ("u0", "u2") and all(
        b["score"] > a["score"] for a, b in zip(steps, steps[1:], strict=False)
    )


def test_cross_fitted_choice_never_fits_on_the_tiles_it_scores():
    rng = np.random.default_rng(3)
    labels = blocky_labels(rng)
    data = arrays([noisy_probabilities(rng, labels), noisy_probabilities(rng, labels, signal=0.5)], labels)
    seen = []

    def spy(d):
        seen.append(len(d.labels))
        return fixed_weights([1.0, 1.0], "probability")(d)

    honest = cross_fitted_choice(data, spy)
    assert seen == [int((data.fold_of_tile != f).sum()) for f in np.unique(data.fold_of_tile)]
    # With the weights fixed it is the calibration's own cross-fitted estimate.
    reference = calibrate.cross_fitted(
        data, lambda d: fit_calibration(d, [1.0, 1.0], postprocess=False)[0], [1.0, 1.0]
    )
    assert honest == pytest.approx(reference["mcc"], abs=1e-12)


def candidate(name, data, weights):
    """A candidate row as ``combination_row`` makes it: per-tile confusions cross-fitted and
    by the plain argmax."""
    return {**combination_row(name, data, weights, "probability"), "candidate": True}


def test_per_tile_cross_fitted_confusions_pool_to_the_cross_fitted_mcc():
    rng = np.random.default_rng(4)
    labels = blocky_labels(rng)
    data = arrays([noisy_probabilities(rng, labels), noisy_probabilities(rng, labels, signal=0.5)], labels)
    tiles = cross_fitted_confusions(data, fixed_weights([1.0, 1.0], "probability"))
    assert tiles.shape == (len(labels), K, K)
    assert tiles.sum(axis=(1, 2)).tolist() == [int((t != IGNORE_INDEX).sum()) for t in labels]
    pooled = calibrate.metrics_from_confusion(tiles.sum(axis=0))["mcc"]
    assert pooled == pytest.approx(
        cross_fitted_choice(data, fixed_weights([1.0, 1.0], "probability")), abs=1e-12
    )


def test_a_clearly_better_combination_is_chosen_over_the_mean():
    """A unit with no signal drags the mean down on every tile: leaving it out wins by far
    more than the bootstrap's standard error."""
    rng = np.random.default_rng(5)
    labels = blocky_labels(rng, tiles=16)
    data = arrays([noisy_probabilities(rng, labels), noisy_probabilities(rng, labels, signal=0.0)], labels)
    rows = [candidate("probability mean", data, [1.0, 1.0]), candidate("u0 only", data, [1.0, 0.0])]
    chosen, note = choose_combination(rows, data.groups())
    assert chosen["name"] == "u0 only" and note["best"] == "u0 only"
    assert note["margin"] > 5 * note["standard_error"] > 0


def test_a_lead_inside_the_noise_keeps_the_mean_of_every_member():
    """Two equally good units: one of them alone may lead the mean by chance on these tiles,
    but not by more than one standard error, so the mean of both ships."""
    rng = np.random.default_rng(6)
    labels = blocky_labels(rng, tiles=16)
    units = [noisy_probabilities(rng, labels, signal=1.2, noise=1.5) for _ in range(2)]
    data = arrays(units, labels)
    mean = candidate("probability mean", data, [1.0, 1.0])
    # The one-unit row given the lead the rule must see through: its confusions, MCC + a hair.
    alone = candidate("u0 only", data, [1.0, 0.0])
    alone["mcc_cross_fitted"] = shipped_score(mean)[0] + 1e-4
    chosen, note = choose_combination([mean, alone], data.groups())
    assert note["best"] == "u0 only" and chosen["name"] == "probability mean"
    assert 0 < note["margin"] < note["standard_error"]


def test_the_mean_is_scored_by_its_argmax_where_its_rule_loses_cross_fitted():
    """The rule guard ships the mean's plain argmax when the mean's fitted rule loses to it
    cross-fitted, so that is the figure another combination must beat (demo seed 4: the
    mean's biases lost 0.016 cross-fitted and one seed's members shipped instead)."""
    rng = np.random.default_rng(7)
    labels = blocky_labels(rng, tiles=16)
    data = arrays([noisy_probabilities(rng, labels), noisy_probabilities(rng, labels, signal=1.5)], labels)
    mean, alone = candidate("probability mean", data, [1.0, 1.0]), candidate("u0 only", data, [1.0, 0.0])
    # A rule that overfits: far below the mean's own argmax cross-fitted; u0 alone in between.
    mean["mcc_cross_fitted"] = mean["mcc_argmax"] - 0.05
    alone["mcc_cross_fitted"] = mean["mcc_argmax"] - 0.01
    chosen, note = choose_combination([mean, alone], data.groups())
    assert chosen["name"] == note["best"] == "probability mean"
    assert note["reference_scored_by"] == "argmax"
    assert "by its argmax" in choice_words(note)
    assert shipped_score(mean)[0] == mean["mcc_argmax"]
    # The argmax's per-tile confusions pool to its MCC (the bootstrap's input).
    pooled = calibrate.metrics_from_confusion(mean["argmax_tile_confusions"].sum(axis=0))["mcc"]
    assert pooled == pytest.approx(mean["mcc_argmax"], abs=1e-12)
    # Where the rule wins cross-fitted, the rule's figure stands.
    mean["mcc_cross_fitted"] = mean["mcc_argmax"] + 0.001
    assert shipped_score(mean)[0] == mean["mcc_cross_fitted"] and shipped_score(mean)[2] == "rule"


def test_bootstrap_resamples_whole_images():
    """Tiles of one image move together: with every image cut into four identical tiles the
    standard error is that of the images, not of four times as many independent tiles."""
    rng = np.random.default_rng(9)
    labels = blocky_labels(rng, tiles=12)
    a = cross_fitted_confusions(
        arrays([noisy_probabilities(rng, labels)], labels), fixed_weights([1.0], "probability")
    )
    b = cross_fitted_confusions(
        arrays([noisy_probabilities(rng, labels, signal=1.5)], labels), fixed_weights([1.0], "probability")
    )
    by_image = mcc_difference_se(
        np.repeat(a, 4, axis=0), np.repeat(b, 4, axis=0), np.repeat(np.arange(12), 4)
    )
    by_tile = mcc_difference_se(np.repeat(a, 4, axis=0), np.repeat(b, 4, axis=0), np.arange(48))
    assert mcc_difference_se(a, b, np.arange(12)) == pytest.approx(by_image, rel=0.25)
    assert by_tile < 0.7 * by_image
    assert mcc_difference_se(a, a, np.arange(12)) == 0.0


def fitted_rule(probs, labels):
    """``fit_rule`` as a cross-validation calls it, on one unit covering every tile."""
    pool = SimpleNamespace(coverage=lambda: "every tile", tiles=np.arange(len(labels)), tta="none",
                           covers_all=True)  # fmt: skip
    data = arrays([probs], labels)
    return fit_rule(pool, data, data, [1.0], "probability", kind="single model", print_fn=lambda _: None)


def test_a_rule_that_generalises_is_kept():
    """Every fold underrates debris alike: the rule fitted on three folds helps the fourth."""
    rng = np.random.default_rng(8)
    labels = blocky_labels(rng)
    rule, oof = fitted_rule(noisy_probabilities(rng, labels, shift=(0.0, 0.0, -2.5, 0.0)), labels)
    assert rule.fitted.get("kept") is not False and rule.log_bias[2] > 1.0
    assert oof["cross_fitted_mcc"] > oof["mcc"] + 0.02


def test_a_rule_that_does_not_generalise_is_replaced_by_the_plain_argmax():
    """Folds 0-1 underrate debris, folds 2-3 overrate it, and pixels have no spatial structure
    (nothing for the component sizes to use): what three folds teach about debris hurts the
    fourth (in 6 of 6 seeds tried), so the cross-fitted MCC falls below the argmax's and no
    rule ships."""
    rng = np.random.default_rng(1)
    labels = blocky_labels(rng, tiles=16, size=32, block=1)
    fold = np.arange(len(labels)) % 4  # as ``arrays`` assigns them
    under = noisy_probabilities(rng, labels, noise=0.6, shift=(0.0, 0.0, -0.75, 0.0))
    over = noisy_probabilities(rng, labels, noise=0.6, shift=(0.0, 0.0, 0.75, 0.0))
    probs = np.where((fold < 2)[None, :, None, None], under, over)
    rule, oof = fitted_rule(probs, labels)
    assert rule.fitted["kept"] is False and rule.fitted["rejected"]["cross_fitted_mcc"] < oof["mcc"]
    assert rule.log_bias == Calibration.identity().log_bias and rule.min_component == (0,) * K
    assert oof["calibrated_mcc"] == oof["cross_fitted_mcc"] == oof["mcc"]
    assert oof["rule"].startswith("not kept")
    assert score(probs, labels, rule)["mcc"] == pytest.approx(oof["mcc"], abs=1e-12)


def test_calibration_round_trips_and_rejects_nonsense():
    fitted = Calibration(
        (0.0, 0.5, 1.25, -1.0), 0.7, (0, 4, 16, 0), (0, 8, 0, 0), "probability", {"a": 1.0, "b": 0.0}
    )
    assert Calibration.from_dict(fitted.to_dict()) == fitted
    assert Calibration.from_dict(None) is None
    assert fitted.member_weight("b") == 0.0
    for bad in (
        {"log_bias": [0.0, 1.0], "min_component": [0] * K},  # two biases, four sizes
        {"log_bias": [0.0, float("nan"), 0.0, 0.0]},
        {"log_bias": [0.0] * K, "temperature": 0},
        {"log_bias": [0.0] * K, "combine": "median"},
        {"log_bias": [0.0] * K, "weights": {"a": 0.0}},
        {"temperature": 1.0},
    ):
        with pytest.raises(ModelError, match="config.json"):
            Calibration.from_dict(bad, "config.json")


@pytest.fixture(scope="module")
def template():
    spec = importlib.util.spec_from_file_location("solution_under_test", export.TEMPLATE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "fitted",
    [
        Calibration.identity(),
        Calibration((0.0, 0.3, 1.2, -0.5), 0.7, (0, 6, 12, 3), (0, 5, 0, 0), "probability"),
        Calibration((0.0, -0.2, 0.8, 0.0), 1.0, (4, 0, 9, 0), (0, 0, 7, 0), "log_probability"),
    ],
    ids=["identity", "probability-mean", "log-probability-mean"],
)
def test_solution_template_repeats_the_rule_pixel_for_pixel(template, fitted):
    rng = np.random.default_rng(8)
    labels = blocky_labels(rng, tiles=3)
    members = [noisy_probabilities(rng, labels, noise=1.5)[:, i] for i in range(3)]
    weights = [1.0, 2.0, 0.5]
    total = mirror = None
    for probs, weight in zip(members, weights, strict=True):
        total = fitted.add_member(total, probs, weight)
        mirror = template.add_member(mirror, probs, weight, fitted.temperature, fitted.combine)
    np.testing.assert_array_equal(total, mirror)
    ours = fitted.combined(total, sum(weights))
    theirs = template.combined_probabilities(mirror, sum(weights), fitted.combine)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(
        fitted.decide(ours), template.decide(theirs, fitted.log_bias, fitted.min_component, fitted.max_hole)
    )
