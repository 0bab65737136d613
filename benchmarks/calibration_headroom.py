"""How much can a decision rule add to the demo ensemble's argmax? Richer rules, cross-fitted on OOF.

    python benchmarks/ensemble_gain.py --test-images 20 --out /tmp/gain          # the demo runs
    python benchmarks/calibration_headroom.py --runs /tmp/gain --seeds 0,1,2     # ~2 min a seed

A diagnostic for issue 14, whose goal asks the calibrated ensemble to beat the uncalibrated
one in every seed. ``glacier ensemble`` keeps its fitted rule only where the rule's
cross-fitted out-of-fold MCC reaches the plain argmax's; where it does not, the calibrated
ensemble *is* the uncalibrated one. Is that the rule's search being too weak, or is there
nothing to gain? Per demo seed of an ``ensemble_gain.py --out`` folder, on the probability
mean of the demo's ten members' out-of-fold predictions (two per tile), every rule below is
fitted on four folds and scored on the fifth, the confusions pooled (as the guard does):

- the plain argmax (what the rule must beat);
- per-class log-biases alone (``fit_log_bias``);
- the shipped rule (temperature, log-biases, minimum components, holes: ``fit_calibration``);
- matrix scaling: a multinomial logistic regression on the four log-probabilities (a full
  4 x 4 linear map and biases, the usual parametric calibration), then log-biases for MCC;
- the same with each member's probability spread as four more inputs (where members
  disagree, trust the mean less);
- a Gaussian blur of the class probabilities before the argmax (hand-drawn outlines are
  smooth), its width chosen on the four folds.

Every figure is measured in this run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0)
REGRESSION_PIXELS = 200_000
"""Pixels a logistic regression is fitted on (a fixed-seed sample of the training folds)."""


def oof_arrays(demo: Path, seed: int):
    """The demo ensemble's pooled OOF (``OofArrays``): its CV folds and the next seed's."""
    from ensemble_encoder_mix import unit_runs  # this folder's script, beside this one

    from glacier.artifacts import RunFolder
    from glacier.decisions.calibrate import OofArrays
    from glacier.decisions.oof import OofMember, OofPool

    members = [
        OofMember(name, f"seed{unit_seed}", RunFolder(run).oof)
        for unit in ("demo", "demo_next")
        for name, unit_seed, _, run in unit_runs(demo, seed, unit, None)
    ]
    return OofArrays.from_pool(OofPool(members))


def _log(probs: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(probs, 1e-6))


def _features(data, tiles: np.ndarray, spread: bool) -> np.ndarray:
    """(pixels, F): the mean's log-probabilities (and the units' spread) of ``tiles``."""
    units = [p[:, tiles].reshape(p.shape[0], -1) for p in data.unit_probs]
    mean = np.mean(units, axis=0)
    columns = [_log(mean)]
    if spread:
        columns.append(np.max(units, axis=0) - np.min(units, axis=0))
    return np.concatenate(columns).T


def matrix_scaling(spread: bool):
    """A rule fitter: logistic regression on the features, then MCC log-biases; returns a
    predictor of class indices for held-out tiles."""
    from sklearn.linear_model import LogisticRegression

    from glacier.decisions.calibrate import fit_log_bias, sample_pixels
    from glacier.domain import NUM_CLASSES

    def fit(data, train: np.ndarray):
        labels = data.labels[train].reshape(-1)
        pick = sample_pixels(data.labels[train], REGRESSION_PIXELS)
        x = _features(data, train, spread)
        model = LogisticRegression(max_iter=500).fit(x[pick], labels[pick])

        def scores(tiles: np.ndarray) -> np.ndarray:
            full = np.full((NUM_CLASSES, int(tiles.sum()) * data.labels[0].size), -30.0)
            full[model.classes_] = model.predict_log_proba(_features(data, tiles, spread)).T
            return full

        valid = labels != 255
        bias = np.asarray(fit_log_bias(np.exp(scores(train)[:, valid]), labels[valid])[0])
        return lambda tiles: (scores(tiles) + bias[:, None]).argmax(axis=0).reshape(data.labels[tiles].shape)

    return fit


def blur_rule(data, train: np.ndarray):
    """The Gaussian blur width (0 = none) with the best MCC on ``train``'s tiles."""
    import cv2

    from glacier.decisions.calibrate import pixel_mcc

    def predict(tiles: np.ndarray, sigma: float) -> np.ndarray:
        mean = np.mean([p[:, tiles] for p in data.unit_probs], axis=0)
        if sigma:
            mean = np.stack(
                [
                    [
                        cv2.GaussianBlur(mean[k, i], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
                        for i in range(mean.shape[1])
                    ]
                    for k in range(mean.shape[0])
                ]
            )
        return mean.argmax(axis=0)

    valid = data.labels[train] != 255
    scored = {s: pixel_mcc(data.labels[train][valid], predict(train, s)[valid]) for s in (0.0, *BLUR_SIGMAS)}
    sigma = max(scored, key=scored.get)
    return lambda tiles: predict(tiles, sigma)


def cross_fitted_mcc(data, fit) -> float:
    """Pooled MCC of ``fit(data, train_tiles)`` applied to each held-out fold."""
    from glacier.domain import IGNORE_INDEX, NUM_CLASSES
    from glacier.metrics import confusion_matrix, matthews_corrcoef

    total = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    for fold in np.unique(data.fold_of_tile):
        held_out = data.fold_of_tile == fold
        predict = fit(data, ~held_out)
        total += confusion_matrix(predict(held_out), data.labels[held_out], NUM_CLASSES, IGNORE_INDEX)
    return matthews_corrcoef(total)


def calibration_rule(postprocess: bool):
    """The project's own fit (glacier/decisions/calibrate.py) as a fitter of this module's kind."""
    from glacier.decisions.calibrate import combine, decide_tiles, fit_calibration

    def fit(data, train: np.ndarray):
        weights = [1.0] * len(data.unit_probs)
        rule = fit_calibration(data.subset(train), weights, postprocess=postprocess)[0]
        return lambda tiles: decide_tiles(combine(data.subset(tiles).unit_probs, weights, rule), rule)

    return fit


def argmax_rule(data, train: np.ndarray):
    return lambda tiles: np.mean([p[:, tiles] for p in data.unit_probs], axis=0).argmax(axis=0)


RULES = {
    "argmax": argmax_rule,
    "log-biases": calibration_rule(postprocess=False),
    "shipped rule": calibration_rule(postprocess=True),
    "matrix scaling": matrix_scaling(spread=False),
    "matrix scaling + spread": matrix_scaling(spread=True),
    "blur": blur_rule,
}


def headroom(demo: Path, seed: int) -> dict[str, Any]:
    data = oof_arrays(demo, seed)
    return {"seed": seed, **{name: cross_fitted_mcc(data, fit) for name, fit in RULES.items()}}


def main() -> None:
    from ensemble_error_anatomy import gain_runs_parser  # this folder's script, beside this one

    args = gain_runs_parser(__doc__).parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        rows.append(headroom(args.runs / f"seed_{seed}", seed))
        print(json.dumps(rows[-1]), flush=True)
    print("\nCross-fitted out-of-fold MCC of the demo ensemble's probability mean (gain over the argmax):\n")
    print("| seed | " + " | ".join(RULES) + " |")
    print("|" + " --- |" * (len(RULES) + 1))
    for row in rows:
        cells = [f"{row['argmax']:.4f}"] + [
            f"{row[name]:.4f} ({row[name] - row['argmax']:+.4f})" for name in list(RULES)[1:]
        ]
        print(f"| {row['seed']} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
