"""Segmentation metrics from confusion matrices: MCC (the competition metric), IoU, F1.

Every metric derives from one (K, K) confusion matrix (rows truth, columns prediction), so
matrices from batches, processes and images simply add up. The MCC is sklearn's multiclass
``matthews_corrcoef`` over all pixels flattened together, as the competition computes it.

In a distributed loop, gather per-sample matrices so that Accelerate drops the samples it
duplicated to pad the last batch:

    cm = per_sample_confusion(logits.argmax(1), masks)
    meter.update_confusion(accelerator.gather_for_metrics(cm).sum(0))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from glacier.domain import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES

Array = torch.Tensor | np.ndarray


def confusion_matrix(
    pred: Array, target: Array, num_classes: int = NUM_CLASSES, ignore_index: int = IGNORE_INDEX
) -> Array:
    """(K, K) int64 pixel counts, rows truth and columns prediction; ignore pixels skipped.

    Accepts torch tensors (result on their device) or numpy arrays (numpy result).
    """
    if isinstance(pred, np.ndarray) or isinstance(target, np.ndarray):
        pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
        _check_shapes(pred.shape, target.shape)
        valid = target != ignore_index
        pred, target = pred[valid].astype(np.int64), target[valid].astype(np.int64)
        _check_range(pred, target, num_classes)
        counts = np.bincount(target * num_classes + pred, minlength=num_classes**2)
        return counts.reshape(num_classes, num_classes)
    _check_shapes(pred.shape, target.shape)
    pred, target = pred.reshape(-1), target.reshape(-1)
    valid = target != ignore_index
    pred, target = pred[valid].long(), target[valid].long()
    _check_range(pred, target, num_classes)
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def per_sample_confusion(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int = NUM_CLASSES, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """(B, K, K) int64: one confusion matrix per sample of a (B, H, W) batch."""
    _check_shapes(pred.shape, target.shape)
    batch = pred.shape[0]
    pred, target = pred.reshape(batch, -1).long(), target.reshape(batch, -1).long()
    valid = target != ignore_index
    sample = torch.arange(batch, device=pred.device).unsqueeze(1).expand_as(pred)
    pred, target, sample = pred[valid], target[valid], sample[valid]
    _check_range(pred, target, num_classes)
    index = (sample * num_classes + target) * num_classes + pred
    counts = torch.bincount(index, minlength=batch * num_classes**2)
    return counts.reshape(batch, num_classes, num_classes)


def matthews_corrcoef(cm: Array) -> float:
    """Multiclass MCC of a confusion matrix, as sklearn computes it (0 where undefined)."""
    cm = np.asarray(_to_numpy(cm), dtype=np.float64)
    t_sum, p_sum = cm.sum(axis=1), cm.sum(axis=0)
    n_correct, n_samples = np.trace(cm), cm.sum()
    cov_ytyp = n_correct * n_samples - t_sum @ p_sum
    cov_ypyp = n_samples**2 - p_sum @ p_sum
    cov_ytyt = n_samples**2 - t_sum @ t_sum
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / math.sqrt(cov_ytyt * cov_ypyp))


def metrics_from_confusion(
    cm: Array, class_names: tuple[str, ...] | list[str] = CLASS_NAMES
) -> dict[str, Any]:
    """MCC, per-class IoU and F1, their means, pixel accuracy, confusion and support.

    A class absent from both truth and prediction has IoU/F1 None and is left out of the
    means. All values are plain Python numbers (JSON-ready).
    """
    counts = np.asarray(_to_numpy(cm), dtype=np.int64)
    names = list(class_names)[: counts.shape[0]]
    tp = np.diag(counts).astype(np.float64)
    fp = counts.sum(axis=0) - tp
    fn = counts.sum(axis=1) - tp
    iou = {name: _ratio(tp[k], tp[k] + fp[k] + fn[k]) for k, name in enumerate(names)}
    f1 = {name: _ratio(2 * tp[k], 2 * tp[k] + fp[k] + fn[k]) for k, name in enumerate(names)}
    total = int(counts.sum())
    return {
        "mcc": matthews_corrcoef(counts),
        "iou": iou,
        "f1": f1,
        "miou": _mean(iou.values()),
        "mean_f1": _mean(f1.values()),
        "pixel_accuracy": _ratio(tp.sum(), total),
        "confusion": counts.tolist(),
        "support": {name: int(counts[k].sum()) for k, name in enumerate(names)},
        "pixels": total,
    }


class ConfusionMeter:
    """Accumulates one (K, K) confusion matrix; memory does not grow with the data."""

    def __init__(self, num_classes: int = NUM_CLASSES, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``pred`` class indices (B, H, W) or logits (B, K, H, W)."""
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(dim=1)
        self.update_confusion(confusion_matrix(pred, target, self.num_classes, self.ignore_index))

    def update_confusion(self, cm: Array) -> None:
        """Add a confusion matrix (e.g. gathered from all processes and summed)."""
        cm = torch.as_tensor(_to_numpy(cm), dtype=torch.int64)
        if cm.dim() == 3:
            cm = cm.sum(dim=0)
        self.confusion += cm

    def compute(self) -> dict[str, Any]:
        return metrics_from_confusion(self.confusion)

    def reset(self) -> None:
        self.confusion.zero_()


def _check_shapes(pred_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> None:
    if tuple(pred_shape) != tuple(target_shape):
        raise ValueError(f"prediction shape {tuple(pred_shape)} != target shape {tuple(target_shape)}")


def _check_range(pred: Array, target: Array, num_classes: int) -> None:
    for name, values in (("prediction", pred), ("target", target)):
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} has class indices outside 0..{num_classes - 1}")


def _to_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def _mean(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None
