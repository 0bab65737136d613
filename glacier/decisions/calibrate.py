"""Fit the decision rule (glacier/decisions/rule.py) to maximise the pooled OOF MCC.

    data = OofArrays.from_pool(pool)
    rule, report = fit_calibration(data, weights=[1.0, 1.0])

In order, each step keeping what the previous ones chose:

1. **Temperature** (only for a probability mean of two or more members per tile; it changes
   no decision otherwise): a small grid, biases refitted for each value, kept only when it
   gains at least ``MIN_GAIN_TEMPERATURE`` MCC over 1.
2. **Per-class log-biases** (class 0 fixed at 0: only differences matter): coordinate ascent
   over a grid, then a finer grid around the result, on a fixed-seed subsample of the
   labelled pixels (``max_pixels``) for speed.
3. **Minimum component size per class**, then **hole filling per class**: one pass over the
   classes in index order (the order the rule applies them), each size chosen from a grid on
   all pixels of all tiles, kept when it gains at least ``MIN_GAIN_POSTPROCESS``.

Every MCC reported is computed on all labelled pixels with the rule's own ``decide``.
Gains fitted and measured on the same pixels are optimistic; ``cross_fitted`` refits on all
folds but one and scores the one left out, the honest estimate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from glacier.decisions.oof import OofPool
from glacier.decisions.rule import Calibration, class_scores
from glacier.domain import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES
from glacier.metrics import matthews_corrcoef, metrics_from_confusion

BIAS_GRID = np.round(np.arange(-3.0, 3.0001, 0.25), 4)
FINE_STEPS = np.round(np.arange(-0.2, 0.2001, 0.05), 4)
TEMPERATURES = (0.5, 0.7, 1.0, 1.4, 2.0)
SIZE_GRID = (0, 4, 8, 16, 32, 64, 128, 256, 512)
MIN_GAIN_TEMPERATURE = 1e-3
MIN_GAIN_POSTPROCESS = 2e-4
MAX_PIXELS = 500_000
MAX_ROUNDS = 4


@dataclasses.dataclass
class OofArrays:
    """Pooled OOF in the rule's layout: each unit's probabilities (K, N, T, T), labels (N, T, T)."""

    unit_probs: list[np.ndarray]
    labels: np.ndarray
    fold_of_tile: np.ndarray
    units: list[str]
    image_of_tile: np.ndarray | None = None
    """Each tile's image id (tiles of one image are not independent); None: every tile its own."""

    @classmethod
    def from_pool(cls, pool: OofPool) -> OofArrays:
        probs = [np.moveaxis(pool.unit_probabilities(u), 1, 0) for u in pool.units]
        return cls(probs, pool.labels, pool.fold_of_tile, list(pool.units), np.asarray(pool.images))

    def subset(self, tiles: np.ndarray) -> OofArrays:
        """The arrays of the tiles where ``tiles`` (bool per tile) is true."""
        images = None if self.image_of_tile is None else self.image_of_tile[tiles]
        return OofArrays(
            [p[:, tiles] for p in self.unit_probs],
            self.labels[tiles],
            self.fold_of_tile[tiles],
            self.units,
            images,
        )

    def with_units(self, units: Sequence[str], probs: Sequence[np.ndarray]) -> OofArrays:
        return OofArrays(list(probs), self.labels, self.fold_of_tile, list(units), self.image_of_tile)

    def groups(self) -> np.ndarray:
        """Each tile's group for resampling: its image's index (or its own, without image ids)."""
        if self.image_of_tile is None:
            return np.arange(len(self.labels))
        return np.unique(self.image_of_tile, return_inverse=True)[1].reshape(-1)


def combine(unit_probs: Sequence[np.ndarray], weights: Sequence[float], rule: Calibration) -> np.ndarray:
    """The weighted combination of the units' probabilities under ``rule`` (zero weights skipped)."""
    total = None
    for probs, weight in zip(unit_probs, weights, strict=True):
        if weight > 0:
            total = rule.add_member(total, probs, weight)
    return rule.combined(total, float(sum(weights)))


def pixel_mcc(labels: np.ndarray, pred: np.ndarray) -> float:
    """MCC of flat labels (no ignore pixels) and predictions (sklearn's, from the confusion)."""
    return _coded_mcc(labels.astype(np.int64) * NUM_CLASSES, pred)


def _coded_mcc(label_codes: np.ndarray, pred: np.ndarray) -> float:
    """``pixel_mcc`` with the labels given as ``label * K`` (computed once per search)."""
    counts = np.bincount(label_codes + pred, minlength=NUM_CLASSES**2)
    return matthews_corrcoef(counts.reshape(NUM_CLASSES, NUM_CLASSES))


def decide_tiles(probs: np.ndarray, rule: Calibration) -> np.ndarray:
    """(K, N, T, T) probabilities -> (N, T, T) class indices, tile by tile with ``decide``."""
    return np.stack([rule.decide(probs[:, i]) for i in range(probs.shape[1])])


def rule_is_kept(cross_fitted_mcc: float, argmax_mcc: float) -> bool:
    """The rule guard: a fitted rule ships only where its cross-fitted MCC is at least the plain
    argmax's (which fits nothing, so its OOF MCC is already an honest figure)."""
    return cross_fitted_mcc >= argmax_mcc


def score(probs: np.ndarray, labels: np.ndarray, rule: Calibration) -> dict[str, Any]:
    """Pooled metrics of ``rule`` on (K, N, T, T) probabilities."""
    from glacier.metrics import confusion_matrix

    return metrics_from_confusion(
        confusion_matrix(decide_tiles(probs, rule), labels, NUM_CLASSES, IGNORE_INDEX)
    )


# ------------------------------------------------------------------------------ biases
def sample_pixels(labels: np.ndarray, max_pixels: int, seed: int = 0) -> np.ndarray:
    """Flat indices of at most ``max_pixels`` labelled pixels, drawn with a fixed seed."""
    valid = np.flatnonzero(labels.reshape(-1) != IGNORE_INDEX)
    if len(valid) <= max_pixels:
        return valid
    return np.sort(np.random.default_rng(seed).choice(valid, size=max_pixels, replace=False))


def fit_log_bias(probs: np.ndarray, labels: np.ndarray) -> tuple[tuple[float, ...], float]:
    """Per-class log-biases (class 0 at 0) maximising the MCC of flat (K, n) probabilities."""
    base = class_scores(probs, (0.0,) * probs.shape[0])
    bias = np.zeros(probs.shape[0], dtype=np.float32)
    codes = labels.astype(np.int64) * NUM_CLASSES
    best = _coded_mcc(codes, base.argmax(axis=0))
    for grid in [BIAS_GRID] * MAX_ROUNDS + [None, None]:
        changed = False
        for k in range(1, probs.shape[0]):
            candidates = grid if grid is not None else bias[k] + FINE_STEPS
            value, mcc = _best_bias(base, bias, k, codes, candidates, best)
            if mcc > best:
                bias[k], best, changed = value, mcc, True
        if not changed and grid is not None:
            break  # the coarse grid converged: go on to the fine steps
    return tuple(float(b) for b in bias), best


def _best_bias(base, bias, k, codes, candidates, best) -> tuple[float, float]:
    """The candidate bias of class k with the highest MCC (the current one wins ties)."""
    others = base + bias[:, None]
    others[k] = -np.inf
    rival, rival_class = others.max(axis=0), others.argmax(axis=0)
    chosen, chosen_mcc = float(bias[k]), best
    for value in candidates:
        pred = np.where(base[k] + np.float32(value) > rival, k, rival_class)
        mcc = _coded_mcc(codes, pred)
        if mcc > chosen_mcc + 1e-9:
            chosen, chosen_mcc = float(value), mcc
    return chosen, chosen_mcc


# ---------------------------------------------------------------------- post-processing
def fit_min_component(
    scores: np.ndarray, indices: np.ndarray, labels: np.ndarray
) -> tuple[tuple[int, ...], np.ndarray]:
    """Per-class minimum component sizes, classes in order; returns them and the new indices."""
    order = np.argsort(-scores, axis=0, kind="stable")
    top, second = order[0], order[1]
    out, sizes = indices.copy(), []
    for k in range(scores.shape[0]):
        members = out == k
        area = _component_areas(members, connectivity=8)
        alternative = np.where(top == k, second, top).astype(out.dtype)
        size, out = _best_size(out, labels, members, area, alternative)
        sizes.append(size)
    return tuple(sizes), out


def fit_max_hole(indices: np.ndarray, labels: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    """Per-class hole sizes to fill, classes in order; returns them and the new indices."""
    out, sizes = indices.copy(), []
    for k in range(NUM_CLASSES):
        others = out != k
        area = _component_areas(others, connectivity=4, enclosed_only=True)
        size, out = _best_size(out, labels, others, area, np.uint8(k))
        sizes.append(size)
    return tuple(sizes), out


def _best_size(
    out: np.ndarray, labels: np.ndarray, members: np.ndarray, area: np.ndarray, replacement
) -> tuple[int, np.ndarray]:
    """The grid size whose replacement of ``members`` pixels in components smaller than it
    scores best (0, nothing replaced, unless a size gains ``MIN_GAIN_POSTPROCESS``)."""
    valid = labels != IGNORE_INDEX
    flat_labels = labels[valid]
    best_size, best_out = 0, out
    best = pixel_mcc(flat_labels, out[valid])
    for size in SIZE_GRID[1:]:
        candidate = np.where(members & (area < size), replacement, out).astype(out.dtype)
        mcc = pixel_mcc(flat_labels, candidate[valid])
        if mcc > best + MIN_GAIN_POSTPROCESS:
            best_size, best_out, best = size, candidate, mcc
    return best_size, best_out


def _component_areas(binary: np.ndarray, connectivity: int, enclosed_only: bool = False) -> np.ndarray:
    """Per pixel of ``binary`` (N, T, T), the area of its connected component (tile by tile);
    0 outside ``binary``. ``enclosed_only``: components touching the border count as huge."""
    areas = np.zeros(binary.shape, dtype=np.int64)
    height, width = binary.shape[1:]
    huge = np.iinfo(np.int64).max
    for i, tile in enumerate(binary):
        _, labels, stats, _ = cv2.connectedComponentsWithStats(
            tile.astype(np.uint8), connectivity=connectivity
        )
        area = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
        if enclosed_only:
            x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
            w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
            area = np.where((x > 0) & (y > 0) & (x + w < width) & (y + h < height), area, huge)
        areas[i] = np.where(tile, area[labels], 0)
    return areas


# -------------------------------------------------------------------------- the fit
def fit_calibration(
    data: OofArrays,
    weights: Sequence[float] | None = None,
    combine_rule: str = "probability",
    *,
    postprocess: bool = True,
    temperature: bool = True,
    max_pixels: int = MAX_PIXELS,
    seed: int = 0,
) -> tuple[Calibration, dict[str, Any]]:
    """The rule maximising the pooled OOF MCC of ``data``'s units combined with ``weights``
    (default equal) by ``combine_rule``; and a report: MCC after each step, per-class IoU
    before and after. Member weights are left for the caller to fill in (by member name)."""
    weights = list(weights) if weights is not None else [1.0] * len(data.unit_probs)
    sample = sample_pixels(data.labels, max_pixels, seed)
    flat_labels = data.labels.reshape(-1)[sample]
    sampled = [p.reshape(p.shape[0], -1)[:, sample] for p in data.unit_probs]
    rule = Calibration.identity().replace(combine=combine_rule)
    members_per_tile = sum(w > 0 for w in weights)
    fits = {}
    for t in (
        TEMPERATURES if temperature and members_per_tile > 1 and combine_rule == "probability" else (1.0,)
    ):
        candidate = rule.replace(temperature=t)
        fits[t] = fit_log_bias(combine(sampled, weights, candidate), flat_labels)
    chosen_t = max(fits, key=lambda t: fits[t][1])
    if fits[chosen_t][1] < fits[1.0][1] + MIN_GAIN_TEMPERATURE:
        chosen_t = 1.0
    rule = rule.replace(temperature=chosen_t, log_bias=fits[chosen_t][0])

    plain = Calibration.identity()
    stages = {
        "uncalibrated": score(combine(data.unit_probs, [1.0] * len(weights), plain), data.labels, plain)
    }
    if combine_rule != plain.combine or len(set(weights)) > 1:
        combined = plain.replace(combine=combine_rule)
        stages["combined"] = score(combine(data.unit_probs, weights, combined), data.labels, combined)
    probs = combine(data.unit_probs, weights, rule)
    stages["log_bias"] = score(probs, data.labels, rule)
    if postprocess:
        scores = class_scores(probs, rule.log_bias)
        min_component, indices = fit_min_component(
            scores, scores.argmax(axis=0).astype(np.uint8), data.labels
        )
        max_hole, _ = fit_max_hole(indices, data.labels)
        rule = rule.replace(min_component=min_component, max_hole=max_hole)
        stages["postprocess"] = score(probs, data.labels, rule)
    return rule, _report(stages, rule, len(sample), fits)


def _report(stages: dict[str, dict], rule: Calibration, sampled: int, fits: dict) -> dict[str, Any]:
    before, after = stages["uncalibrated"], stages[list(stages)[-1]]
    return {
        "oof_mcc_before": before["mcc"],
        "oof_mcc_after": after["mcc"],
        "stages": {name: m["mcc"] for name, m in stages.items()},
        "iou_before": before["iou"],
        "iou_after": after["iou"],
        "pixels": after["pixels"],
        "bias_fit_pixels": sampled,
        "temperature_scan": {str(t): mcc for t, (_, mcc) in fits.items()},
        "rule": rule.describe(),
    }


def cross_fitted(
    data: OofArrays, fit: Callable[[OofArrays], Calibration], weights: Sequence[float] | None = None
) -> dict[str, Any]:
    """Honest estimate: for each fold, fit on the others' OOF and score the fold's tiles with
    that rule; the confusions of all folds are pooled."""
    from glacier.metrics import confusion_matrix

    weights = list(weights) if weights is not None else [1.0] * len(data.unit_probs)
    total = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    for fold in np.unique(data.fold_of_tile):
        held_out = data.fold_of_tile == fold
        rule = fit(data.subset(~held_out))
        test = data.subset(held_out)
        indices = decide_tiles(combine(test.unit_probs, weights, rule), rule)
        total += confusion_matrix(indices, test.labels, NUM_CLASSES, IGNORE_INDEX)
    metrics = metrics_from_confusion(total)
    return {"mcc": metrics["mcc"], "iou": metrics["iou"]}


def class_iou_line(iou: dict[str, float | None]) -> str:
    return ", ".join(f"{name} {'-' if iou.get(name) is None else f'{iou[name]:.3f}'}" for name in CLASS_NAMES)
