"""Ensembles that earn their cost: greedy forward selection of units by OOF score, and the
table that compares ways of combining them.

    weights, steps = greedy_selection(data, "probability")   # Caruana et al. 2004, with replacement
    rows = [combination_row("probability mean", data, [1, 1], "probability"), ...]
    print(combination_table(rows))

Selection scores an ensemble by the OOF MCC it reaches once its log-biases are fitted (the
rule it will ship with), on the calibration's pixel subsample: argmax MCC would favour
whichever mixture happens to need no bias, which is the very flaw calibration removes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from glacier.decisions.calibrate import (
    MAX_PIXELS,
    OofArrays,
    combine,
    fit_calibration,
    fit_log_bias,
    sample_pixels,
    score,
)
from glacier.decisions.rule import Calibration

GREEDY_TOLERANCE = 1e-4
"""A step must raise the score by at least this much, else selection stops."""


def greedy_selection(
    data: OofArrays, combine_rule: str = "probability", *, max_steps: int | None = None, seed: int = 0
) -> tuple[list[float], list[dict[str, Any]]]:
    """Unit weights (selection counts) chosen greedily with replacement: start from the best
    single unit, then add whichever unit (again, possibly) raises the score most, until no
    step gains ``GREEDY_TOLERANCE``. Returns the weights and the steps taken."""
    sample = sample_pixels(data.labels, MAX_PIXELS, seed)
    labels = data.labels.reshape(-1)[sample]
    sampled = [p.reshape(p.shape[0], -1)[:, sample] for p in data.unit_probs]
    rule = Calibration.identity().replace(combine=combine_rule)
    counts = np.zeros(len(sampled))
    current, steps = -np.inf, []
    for _ in range(max_steps or 2 * len(sampled)):
        trials = []
        for unit in range(len(sampled)):
            trial = counts.copy()
            trial[unit] += 1
            trials.append(fit_log_bias(combine(sampled, trial, rule), labels)[1])
        unit = int(np.argmax(trials))
        if trials[unit] < current + GREEDY_TOLERANCE:
            break
        counts[unit] += 1
        current = trials[unit]
        steps.append({"added": data.units[unit], "score": float(current)})
    return [float(c) for c in counts], steps


def combination_row(
    name: str, data: OofArrays, weights: Sequence[float], combine_rule: str, **fit_options: Any
) -> dict[str, Any]:
    """One line of the comparison: the combination's pooled OOF MCC by argmax and after its
    log-biases (and temperature) are fitted, and the calibrated rule itself."""
    plain = Calibration.identity().replace(combine=combine_rule)
    argmax = score(combine(data.unit_probs, weights, plain), data.labels, plain)
    rule, report = fit_calibration(data, weights, combine_rule, postprocess=False, **fit_options)
    return {
        "name": name,
        "combine": combine_rule,
        "weights": {u: float(w) for u, w in zip(data.units, weights, strict=True)},
        "members_per_tile": int(sum(w > 0 for w in weights)),
        "mcc_argmax": argmax["mcc"],
        "mcc_calibrated": report["oof_mcc_after"],
        "debris_iou_argmax": argmax["iou"].get("debris"),
        "debris_iou_calibrated": report["iou_after"].get("debris"),
        "temperature": rule.temperature,
        "rule": rule,
    }


def combination_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a markdown table (printed as it is)."""
    lines = [
        "| combination | members per tile | OOF MCC argmax | OOF MCC calibrated | debris IoU argmax | debris IoU calibrated |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['members_per_tile']} | {_fmt(row['mcc_argmax'])} | {_fmt(row['mcc_calibrated'])} | "
            f"{_fmt(row['debris_iou_argmax'])} | {_fmt(row['debris_iou_calibrated'])} |"
        )
    return "\n".join(lines)


def plain_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON (the fitted rule as its description)."""
    return {**{k: v for k, v in row.items() if k not in ("rule", "probs")}, "rule": row["rule"].describe()}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
