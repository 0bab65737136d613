"""Segmentation losses: a functional core and one thin module that combines them.

    criterion = CombinedLoss(focal_weight=1.0, dice_weight=1.0, mcc_weight=0.5, boundary_weight=0.5)
    criterion.set_epoch(epoch)                        # boundary-weight ramp
    total, parts = criterion(logits, masks, boundary_logits)

All functions take logits (B, K, H, W) and targets (B, H, W) of class indices with
``ignore_index`` for unlabelled pixels, which touch neither the loss nor its gradient. They
compute in float32 whatever the autocast dtype, so fp16/bf16 training cannot overflow here.

Focal and Dice are softmax/multiclass versions written here rather than smp's: smp's
FocalLoss is a per-class sigmoid loss whose class weights need smp >= 0.5, and the
submission environment pins 0.3. ``dice_loss`` equals smp's multiclass DiceLoss (a test
checks it) and adds class weights. smp has no multiclass MCC loss and no boundary loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from glacier.domain import IGNORE_INDEX, NUM_CLASSES

# ------------------------------------------------------------------- functional core


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    class_weights: torch.Tensor | Sequence[float] | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Softmax focal loss, ``-(1 - p_t)^gamma log p_t``, averaged over labelled pixels.

    With class weights the average is weighted like ``F.cross_entropy(weight=...)``
    (divided by the sum of the pixels' weights); ``gamma=0`` is exactly cross-entropy.
    """
    logits, target = logits.float(), target.long()
    valid = target != ignore_index
    safe_target = torch.where(valid, target, 0).unsqueeze(1)
    log_pt = logits.log_softmax(dim=1).gather(1, safe_target).squeeze(1)
    loss = -log_pt
    if gamma > 0:  # (1 - p)^0 has a NaN gradient at p = 1: skip the factor for plain CE.
        loss = loss * (1.0 - log_pt.exp()).clamp_min(0) ** gamma
    weight = valid.float()
    if class_weights is not None:
        w = torch.as_tensor(class_weights, dtype=torch.float32, device=logits.device)
        weight = weight * w[safe_target.squeeze(1)]
    return (loss * weight).sum() / weight.sum().clamp_min(1e-12)


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_weights: torch.Tensor | Sequence[float] | None = None,
    ignore_index: int = IGNORE_INDEX,
    smooth: float = 0.0,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Soft Dice loss over the batch, ``1 - 2|P∩Y| / (|P| + |Y|)`` per class, averaged.

    Like smp's DiceLoss, a class with no labelled pixel in the batch contributes 0 (its
    Dice is undefined) but still counts in the average; class weights make it a weighted
    average.
    """
    probs, onehot, valid = _probs_and_onehot(logits, target, ignore_index)
    probs = probs * valid
    intersection = (probs * onehot).sum(dim=(0, 2))
    cardinality = (probs + onehot).sum(dim=(0, 2))
    score = (2 * intersection + smooth) / (cardinality + smooth).clamp_min(eps)
    loss = (1.0 - score) * (onehot.sum(dim=(0, 2)) > 0).float()
    if class_weights is None:
        return loss.mean()
    w = torch.as_tensor(class_weights, dtype=torch.float32, device=logits.device)
    return (loss * w).sum() / w.sum().clamp_min(1e-12)


def soft_confusion(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """(K, K) confusion matrix of softmax probabilities: rows truth, columns prediction."""
    probs, onehot, valid = _probs_and_onehot(logits, target, ignore_index)
    probs = probs * valid
    # (K, B*HW) @ (B*HW, K): sum over pixels of onehot_truth x prob_pred.
    num_classes = probs.shape[1]
    return onehot.transpose(0, 1).reshape(num_classes, -1) @ probs.transpose(0, 1).reshape(num_classes, -1).T


def mcc_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX, eps: float = 1e-8
) -> torch.Tensor:
    """``1 - MCC`` of the soft confusion matrix (multiclass MCC as sklearn defines it).

    MCC is computed over all labelled pixels of the batch together, like the competition
    metric. Range 0 (perfect) .. 2 (perfectly inverted); where the MCC is undefined (the
    batch holds one class only) the loss is 1 with zero gradient.
    """
    cm = soft_confusion(logits, target, ignore_index)
    # The (K, K) arithmetic is tiny: do it in float64, on fractions, so large pixel
    # counts cannot cancel catastrophically.
    cm = cm.double()
    cm = cm / cm.sum().clamp_min(eps)
    t_sum, p_sum = cm.sum(dim=1), cm.sum(dim=0)
    numerator = torch.trace(cm) - t_sum @ p_sum
    denominator = ((1.0 - p_sum @ p_sum) * (1.0 - t_sum @ t_sum)).clamp_min(eps).sqrt()
    return (1.0 - numerator / denominator).float()


def boundary_target(
    target: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class boundaries of a (B, H, W) mask: pixels with another class in their 3x3 window.

    Returns ``(boundary, valid)``, both float (B, 1, H, W). Ignore pixels are not labelled
    (``valid`` 0) and never make a neighbour a boundary: a glacier edge against no-data is
    not a class boundary. Two max-pools (of the classes, and of their negation) give the
    largest and smallest neighbour class; a pixel is on a boundary if either differs from it.
    """
    valid = (target != ignore_index).unsqueeze(1)
    classes = target.unsqueeze(1).float()
    big = float(ignore_index) + 1.0
    neighbour_max = F.max_pool2d(torch.where(valid, classes, -1.0), 3, stride=1, padding=1)
    neighbour_min = -F.max_pool2d(torch.where(valid, -classes, -big), 3, stride=1, padding=1)
    boundary = ((neighbour_max != classes) | (neighbour_min != classes)) & valid
    return boundary.float(), valid.float()


def boundary_loss(
    boundary_logits: torch.Tensor,
    target: torch.Tensor,
    pos_weight: float | None = None,
    ignore_index: int = IGNORE_INDEX,
    max_pos_weight: float = 50.0,
) -> torch.Tensor:
    """BCE of boundary logits (B, 1, H, W) against the mask's class boundaries.

    Boundaries are a few percent of the pixels: ``pos_weight`` None weighs boundary pixels
    by the batch's non-boundary/boundary ratio (capped at ``max_pos_weight``).
    """
    edges, valid = boundary_target(target, ignore_index)
    if pos_weight is None:
        positives = (edges * valid).sum()
        negatives = valid.sum() - positives
        weight = (negatives / positives.clamp_min(1.0)).clamp(1.0, max_pos_weight)
    else:
        weight = torch.tensor(float(pos_weight), device=boundary_logits.device)
    loss = F.binary_cross_entropy_with_logits(
        boundary_logits.float(), edges, pos_weight=weight.detach(), reduction="none"
    )
    return (loss * valid).sum() / valid.sum().clamp_min(1.0)


def _probs_and_onehot(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax (B, K, HW), one-hot truth (B, K, HW) zero at ignore pixels, valid (B, 1, HW)."""
    batch, num_classes = logits.shape[:2]
    probs = logits.float().reshape(batch, num_classes, -1).softmax(dim=1)
    target = target.long().reshape(batch, 1, -1)
    valid = target != ignore_index
    onehot = torch.zeros_like(probs).scatter_(1, torch.where(valid, target, 0), 1.0) * valid
    return probs, onehot, valid.float()


# ---------------------------------------------------------------------------- module


class CombinedLoss(nn.Module):
    """Weighted focal + Dice + MCC (+ boundary) loss, from plain arguments.

    A term takes part when its weight is above 0; the boundary term whenever boundary logits
    are passed. ``forward`` returns ``(total, parts)``; ``parts`` holds each weighted-in term,
    detached, for logging. ``boundary_ramp="linear"`` grows the boundary weight from 0 at
    epoch 0 to ``boundary_weight`` at ``boundary_ramp_epochs`` (call ``set_epoch``). The
    arguments are the fields of the training config's loss section, so training builds it as
    ``CombinedLoss(**cfg.training.loss.model_dump(), num_classes=...)``.
    """

    def __init__(
        self,
        *,
        focal_weight: float = 0.0,
        dice_weight: float = 0.0,
        mcc_weight: float = 0.0,
        boundary_weight: float = 0.0,
        boundary_ramp: Literal["none", "linear"] = "none",
        boundary_ramp_epochs: int = 0,
        focal_gamma: float = 2.0,
        class_weights: Sequence[float] | None = None,
        num_classes: int = NUM_CLASSES,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        if boundary_ramp not in ("none", "linear"):
            raise ValueError(f"boundary_ramp must be 'none' or 'linear', got {boundary_ramp!r}")
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(f"{len(class_weights)} class weights for {num_classes} classes")
        self.weights = {"focal": focal_weight, "dice": dice_weight, "mcc": mcc_weight}
        self.max_boundary_weight = boundary_weight
        self.boundary_ramp = boundary_ramp
        self.boundary_ramp_epochs = boundary_ramp_epochs
        self.focal_gamma = focal_gamma
        self.ignore_index = ignore_index
        self.register_buffer(
            "class_weights",
            torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None,
            persistent=False,
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def boundary_weight(self) -> float:
        """The boundary term's weight at the current epoch."""
        if self.boundary_ramp == "none" or self.boundary_ramp_epochs == 0:
            return self.max_boundary_weight
        return self.max_boundary_weight * min(1.0, self.epoch / self.boundary_ramp_epochs)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, boundary_logits: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.autocast(device_type=logits.device.type, enabled=False):
            terms = self._terms(logits.float(), target, boundary_logits)
            if not terms:
                raise ValueError(
                    "every loss weight is 0: set training.loss.focal_weight or another weight > 0"
                )
            total = sum(weight * value for _, weight, value in terms)
        return total, {name: value.detach() for name, _, value in terms}

    def _terms(
        self, logits: torch.Tensor, target: torch.Tensor, boundary_logits: torch.Tensor | None
    ) -> list[tuple[str, float, torch.Tensor]]:
        """(name, weight, value) of each term taking part."""
        ignore, weights = self.ignore_index, self.class_weights
        compute = {
            "focal": lambda: focal_loss(logits, target, self.focal_gamma, weights, ignore),
            "dice": lambda: dice_loss(logits, target, weights, ignore),
            "mcc": lambda: mcc_loss(logits, target, ignore),
        }
        terms = [(name, weight, compute[name]()) for name, weight in self.weights.items() if weight > 0]
        if boundary_logits is not None:
            # Always in the graph (even at weight 0 early in the ramp) so that DDP sees the
            # boundary head used in every step.
            terms.append(
                ("boundary", self.boundary_weight, boundary_loss(boundary_logits, target, None, ignore))
            )
        return terms
