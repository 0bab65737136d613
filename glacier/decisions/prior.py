"""The sampler's prior, taken back out of a model's decisions (a label-shift correction).

    rule = sampler_prior_rule(train_counts, drawn_counts)   # per-class pixel counts
    mask = rule.decide(probs)

A balanced sampler and debris-centred crops show the network more debris and glacier than
the training scenes hold, so it learns ``p(class | pixel)`` under the *drawn* class shares.
Bayes' rule says how to undo that without retraining: multiply each class's probability by
``true share / drawn share`` and renormalise, which is the additive log-bias
``log(true / drawn)`` of a ``Calibration``. A uniform sampler draws the shares the data has,
so its correction is about 0. A class absent from either count keeps the background's bias
(no information to move it). A rule fitted on out-of-fold predictions replaces this one:
it starts from the raw probabilities and sees everything the prior does and more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from glacier.decisions.rule import SAMPLER_PRIOR, Calibration
from glacier.domain import CLASS_NAMES


def prior_log_bias(train_counts: Sequence[float], drawn_counts: Sequence[float]) -> tuple[float, ...]:
    """``log(train share / drawn share)`` per class, background's value subtracted (only
    differences change a decision); 0 relative to background where a class is missing."""
    train = np.asarray(train_counts, dtype=np.float64)
    drawn = np.asarray(drawn_counts, dtype=np.float64)
    if train.shape != drawn.shape or train.ndim != 1 or train.sum() <= 0 or drawn.sum() <= 0:
        raise ValueError(f"need two non-empty per-class counts of one length, got {train} and {drawn}")
    train, drawn = train / train.sum(), drawn / drawn.sum()
    present = (train > 0) & (drawn > 0)
    bias = np.zeros_like(train)
    bias[present] = np.log(train[present] / drawn[present])
    reference = bias[0] if present[0] else 0.0
    bias[present] -= reference
    return tuple(float(b) for b in bias)


def sampler_prior_rule(train_counts: Sequence[float], drawn_counts: Sequence[float]) -> Calibration:
    """The decision rule that undoes the sampler's class prior (see the module docstring)."""
    bias = prior_log_bias(train_counts, drawn_counts)
    return Calibration.identity(len(bias)).replace(
        log_bias=bias,
        fitted={
            "method": SAMPLER_PRIOR,
            "train_shares": _shares(train_counts),
            "drawn_shares": _shares(drawn_counts),
        },
    )


def drawn_counts_from_rows(rows: Sequence[Mapping[str, object]], up_to_epoch: int) -> list[float] | None:
    """Per-class drawn pixel shares summed over the metrics.csv rows of epochs 1..``up_to_epoch``
    (every epoch draws the same number of samples, so the sum of shares weighs them alike);
    None when the rows do not record them (a run older than these columns)."""
    total = np.zeros(len(CLASS_NAMES))
    seen = False
    for row in rows:
        if int(row["epoch"]) > up_to_epoch:
            continue
        values = [row.get(f"drawn_{name}") for name in CLASS_NAMES]
        if any(v in (None, "") for v in values):
            return None
        total += np.asarray([float(v) for v in values])
        seen = True
    return total.tolist() if seen and total.sum() > 0 else None


def _shares(counts: Sequence[float]) -> dict[str, float]:
    values = np.asarray(counts, dtype=np.float64)
    return {name: round(float(v / values.sum()), 5) for name, v in zip(CLASS_NAMES, values, strict=True)}
