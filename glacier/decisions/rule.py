"""The decision rule: member probabilities -> one mask, as fitted on out-of-fold predictions.

    rule = Calibration(log_bias=(0.0, 0.1, 0.9, 0.0), min_component=(0, 0, 16, 0))
    total = None
    for probs, weight in members:                       # (K, H, W) float32 each
        total = rule.add_member(total, probs, weight)
    probs = rule.combined(total, weight_sum)
    mask = rule.decide(probs)                           # uint8 class indices

The steps, in order: each member's probabilities at ``temperature`` (``p ** (1 / T)``,
renormalised), their weighted mean (of probabilities, or of log-probabilities), then the
class with the largest ``log p_k + log_bias[k]``, then connected components of a class
smaller than ``min_component[k]`` pixels handed to the pixels' best other class, then holes
(regions of other classes enclosed by class k) smaller than ``max_hole[k]`` filled with k.

The exported ``solution.py`` (glacier/submission/solution_template.py) repeats these
functions line for line, so that ``glacier predict`` and the platform agree on every pixel;
change both together. The plain argmax of the mean probability is ``Calibration.identity``;
no calibration at all (``None``) is the same decision on the code path of glacier 0.1.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from glacier.domain import NUM_CLASSES
from glacier.errors import ModelError

COMBINE_RULES = ("probability", "log_probability", "soup")
"""How members are combined: the mean of their probabilities, the mean of their logarithms,
or one model whose weights are the members' mean (a soup: glacier/predict/soup.py)."""
SAMPLER_PRIOR = "sampler_prior"
"""``fitted["method"]`` of the rule a model is trained with (glacier/decisions/prior.py)."""
TINY = np.float32(1e-12)
"""Probabilities are clipped here before a logarithm (a member may say exactly 0)."""


@dataclasses.dataclass(frozen=True)
class Calibration:
    """How class probabilities become a mask (see the module docstring); JSON via to_dict."""

    log_bias: tuple[float, ...] = (0.0,) * NUM_CLASSES
    temperature: float = 1.0
    """Applied to each member's probabilities before they are averaged. For one model, or a
    log-probability mean, it changes no decision (it scales the biases), so it stays 1 there."""
    min_component: tuple[int, ...] = (0,) * NUM_CLASSES
    max_hole: tuple[int, ...] = (0,) * NUM_CLASSES
    combine: str = "probability"
    weights: Mapping[str, float] | None = None
    """Ensemble member weights by member name (None: all equal)."""
    fitted: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """How it was fitted (OOF pixels, MCC before and after, source): information only."""

    def __post_init__(self) -> None:
        k = len(self.log_bias)
        problems = []
        if len(self.min_component) != k or len(self.max_hole) != k:
            problems.append("log_bias, min_component and max_hole need one value per class")
        if not all(math.isfinite(b) for b in self.log_bias):
            problems.append(f"log_bias {list(self.log_bias)} must be finite")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            problems.append(f"temperature {self.temperature} must be > 0")
        if any(v < 0 for v in (*self.min_component, *self.max_hole)):
            problems.append("min_component and max_hole must be >= 0")
        if self.combine not in COMBINE_RULES:
            problems.append(f"combine {self.combine!r} is not one of {', '.join(COMBINE_RULES)}")
        if self.weights is not None and (
            any(not (math.isfinite(w) and w >= 0) for w in self.weights.values())
            or not any(w > 0 for w in self.weights.values())
        ):
            problems.append("weights must be >= 0 and not all 0")
        if problems:
            raise ModelError("calibration: " + "; ".join(problems))

    @classmethod
    def identity(cls, num_classes: int = NUM_CLASSES) -> Calibration:
        """The plain argmax of the mean probability."""
        return cls((0.0,) * num_classes, 1.0, (0,) * num_classes, (0,) * num_classes)

    def member_weight(self, name: str) -> float:
        """The weight of ensemble member ``name`` (1 when no weights were fitted)."""
        if self.weights is None:
            return 1.0
        if name not in self.weights:
            raise ModelError(f"calibration has no weight for member {name!r} (it has {sorted(self.weights)})")
        return float(self.weights[name])

    def replace(self, **changes: Any) -> Calibration:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_bias": [float(b) for b in self.log_bias],
            "temperature": float(self.temperature),
            "min_component": [int(v) for v in self.min_component],
            "max_hole": [int(v) for v in self.max_hole],
            "combine": self.combine,
            "weights": None if self.weights is None else {k: float(v) for k, v in self.weights.items()},
            "fitted": dict(self.fitted),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, source: str = "calibration") -> Calibration | None:
        """The inverse of ``to_dict`` (None stays None); a ModelError names ``source``."""
        if data is None:
            return None
        try:
            k = len(data["log_bias"])
            return cls(
                log_bias=tuple(float(b) for b in data["log_bias"]),
                temperature=float(data.get("temperature", 1.0)),
                min_component=tuple(int(v) for v in data.get("min_component") or (0,) * k),
                max_hole=tuple(int(v) for v in data.get("max_hole") or (0,) * k),
                combine=str(data.get("combine", "probability")),
                weights=None if data.get("weights") is None else dict(data["weights"]),
                fitted=dict(data.get("fitted") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{source}: not a valid calibration ({exc!r})") from None
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from None

    def add_member(self, total: np.ndarray | None, probs: np.ndarray, weight: float) -> np.ndarray:
        """``add_member`` with this rule's temperature and combination."""
        return add_member(total, probs, weight, self.temperature, self.combine)

    def combined(self, total: np.ndarray, weight_sum: float) -> np.ndarray:
        """``combined_probabilities`` with this rule's combination."""
        return combined_probabilities(total, weight_sum, self.combine)

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """(K, H, W) combined probabilities -> uint8 (H, W) class indices under this rule."""
        return decide(probs, self.log_bias, self.min_component, self.max_hole)

    def describe(self) -> str:
        """One line for reports: what this rule does."""
        parts = ["log-bias " + ", ".join(f"{b:+.2f}" for b in self.log_bias)]
        if self.fitted.get("method") == SAMPLER_PRIOR:
            parts[0] = "sampler-prior correction, " + parts[0]
        if self.temperature != 1.0:
            parts.append(f"temperature {self.temperature:g}")
        if any(self.min_component):
            parts.append("min component " + "/".join(str(v) for v in self.min_component) + " px")
        if any(self.max_hole):
            parts.append("holes filled below " + "/".join(str(v) for v in self.max_hole) + " px")
        parts.append("weight soup" if self.combine == "soup" else f"{self.combine.replace('_', '-')} mean")
        if self.weights is not None and len(set(self.weights.values())) > 1:
            parts.append("weights " + ", ".join(f"{n} {w:g}" for n, w in self.weights.items()))
        return "; ".join(parts)


# ------------------------------------------------------------------------ the rule itself
# Mirrored in glacier/submission/solution_template.py (plain values, no Calibration object
# there): the same operations in the same order on float32 arrays. Change both together.
def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities (K, ...) at ``temperature``: ``p ** (1 / T)`` renormalised over classes."""
    if temperature == 1.0:
        return probs
    powered = np.power(np.maximum(probs, TINY), np.float32(1.0 / temperature))
    return powered / powered.sum(axis=0, keepdims=True)


def add_member(total, probs, weight, temperature, combine):
    """Add one member's (K, ...) float32 probabilities, weighted, to the running ``total``."""
    probs = sharpen(probs, temperature)
    if combine == "log_probability":
        probs = np.log(np.maximum(probs, TINY))
    term = probs * np.float32(weight)
    return term if total is None else total + term


def combined_probabilities(total, weight_sum, combine):
    """The ensemble's (K, ...) probabilities from the members' weighted ``total``."""
    mean = total / np.float32(weight_sum)
    if combine == "log_probability":
        mean = np.exp(mean - mean.max(axis=0, keepdims=True))
        mean = mean / mean.sum(axis=0, keepdims=True)
    return mean


def class_scores(probs, log_bias):
    """``log p_k + log_bias[k]`` for (K, ...) probabilities."""
    bias = np.asarray(log_bias, dtype=np.float32).reshape((-1,) + (1,) * (probs.ndim - 1))
    return np.log(np.maximum(probs, TINY)) + bias


def remove_small_components(indices, scores, min_component):
    """Hand every 8-connected component of class k smaller than ``min_component[k]`` pixels to
    each pixel's best-scoring other class (classes in index order, one pass)."""
    out = indices.copy()
    for k, size in enumerate(min_component):
        if size <= 1:
            continue
        _, labels, stats, _ = cv2.connectedComponentsWithStats((out == k).astype(np.uint8), connectivity=8)
        small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < size) + 1
        if small.size == 0:
            continue
        region = np.isin(labels, small)
        others = scores[:, region].copy()
        others[k] = -np.inf
        out[region] = others.argmax(axis=0).astype(out.dtype)
    return out


def fill_holes(indices, max_hole):
    """Give class k every 4-connected region of other classes that class k encloses (it
    does not touch the image border) and that is smaller than ``max_hole[k]`` pixels."""
    out = indices.copy()
    height, width = out.shape
    for k, size in enumerate(max_hole):
        if size <= 0:
            continue
        _, labels, stats, _ = cv2.connectedComponentsWithStats((out != k).astype(np.uint8), connectivity=4)
        x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
        w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        inside = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)
        enclosed = inside & (stats[:, cv2.CC_STAT_AREA] < size)
        enclosed[0] = False  # label 0: class k itself
        out[enclosed[labels]] = k
    return out


def decide(probs, log_bias, min_component, max_hole):
    """(K, H, W) combined probabilities -> uint8 (H, W) class indices."""
    scores = class_scores(probs, log_bias)
    indices = scores.argmax(axis=0).astype(np.uint8)
    indices = remove_small_components(indices, scores, min_component)
    return fill_holes(indices, max_hole)
