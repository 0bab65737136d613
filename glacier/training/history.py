"""The per-epoch record of a run: the training loss summed over the epoch, the row that goes
into ``metrics.csv`` (glacier/artifacts/run.py writes it) and the one line printed."""

from __future__ import annotations

from typing import Any

import torch

from glacier.domain import CLASS_NAMES, IGNORE_INDEX
from glacier.training.step import StepOutput


class EpochSums:
    """Running sums of the training loss (and its parts) over one epoch, on the device, and
    the labelled pixels of each class the epoch trained on (the sampler's expected shares
    are a promise made from whole tiles; crops and augmentation change what reaches the loss).

    ``saved`` (``to_dict`` of an unfinished epoch, from a state saved mid-epoch) continues
    those sums, so a resumed epoch reports the same loss as an uninterrupted one.
    """

    def __init__(self, device, saved: dict[str, Any] | None = None) -> None:
        self.device = device
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.parts: dict[str, torch.Tensor] = {}
        self.images = 0
        self.batches = 0
        self.drawn = torch.zeros(len(CLASS_NAMES), dtype=torch.float64, device=device)
        if saved:
            self.loss += saved["loss"]
            self.parts = {
                k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in saved["parts"].items()
            }
            self.images, self.batches = int(saved["images"]), int(saved["batches"])
            self.drawn += torch.tensor(saved.get("drawn", [0.0] * len(CLASS_NAMES)), dtype=torch.float64)

    def add(self, out: StepOutput, images: int, mask: torch.Tensor | None = None) -> None:
        self.loss += out.loss.double()
        if mask is not None:  # counted on the device: no synchronisation per step
            labelled = mask[mask != IGNORE_INDEX].reshape(-1).long()
            self.drawn += torch.bincount(labelled, minlength=len(CLASS_NAMES))[: len(CLASS_NAMES)].double()
        for key, value in out.parts.items():
            if key not in self.parts:
                self.parts[key] = torch.zeros((), dtype=torch.float64, device=self.device)
            self.parts[key] += value.double()
        self.images += images
        self.batches += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": float(self.loss.item()),
            "parts": {k: float(v.item()) for k, v in self.parts.items()},
            "images": self.images,
            "batches": self.batches,
            "drawn": self.drawn.tolist(),
        }

    def reduced(self, accelerator) -> dict[str, float]:
        """Mean loss (and parts) per batch over all processes, the class shares of the pixels
        trained on (``drawn_<class>``) and the total image count."""
        keys = sorted(self.parts)
        local = torch.cat(
            [
                torch.stack([self.loss, *(self.parts[k] for k in keys)]),
                self.drawn,
                torch.tensor(
                    [float(self.batches), float(self.images)], dtype=torch.float64, device=self.device
                ),
            ]
        )
        total = accelerator.reduce(local, reduction="sum") if accelerator.num_processes > 1 else local
        values = total.tolist()
        losses, drawn = values[: len(keys) + 1], values[len(keys) + 1 : -2]
        batches = max(values[-2], 1.0)
        result = {"train_loss": losses[0] / batches}
        result.update({f"train_{k}": v / batches for k, v in zip(keys, losses[1:], strict=True)})
        pixels = max(sum(drawn), 1.0)
        result.update({f"drawn_{c}": v / pixels for c, v in zip(CLASS_NAMES, drawn, strict=True)})
        result["images"] = values[-1]
        return result


def epoch_row(
    epoch: int,
    lr: float,
    train: dict[str, float],
    validation: dict[str, Any] | None,
    seconds: float,
    train_seconds: float,
) -> dict[str, Any]:
    """One row of metrics.csv: the epoch (1-based), the learning rate it trained with, the
    reduced training sums (``EpochSums.reduced``), the validation metrics if it was validated,
    its duration and the training throughput."""
    train = dict(train)
    images = train.pop("images")
    row: dict[str, Any] = {"epoch": epoch, "lr": lr, **train}
    if validation is not None:
        row["val_loss"], row["val_mcc"] = validation["loss"], validation["mcc"]
        for name, value in validation["iou"].items():
            row[f"iou_{name}"] = float("nan") if value is None else value
        row["miou"] = float("nan") if validation["miou"] is None else validation["miou"]
    row["seconds"] = seconds
    row["images_per_s"] = images / max(train_seconds, 1e-9)
    return row


def epoch_line(row: dict[str, object], epochs: int) -> str:
    """One readable line per epoch: losses, validation MCC and per-class IoU, lr, time."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}"]
    train_parts = [k for k in row if k.startswith("train_") and k != "train_loss"]
    if train_parts:
        parts.append("(" + " ".join(f"{k[6:]} {row[k]:.3f}" for k in train_parts) + ")")
    drawn = [k for k in row if k.startswith("drawn_")]
    if drawn:
        parts.append("drawn " + " ".join(f"{k[6:]} {row[k]:.0%}" for k in drawn))
    if "val_mcc" in row:
        parts.append(f"val loss {row['val_loss']:.4f}")
        parts.append(f"MCC {row['val_mcc']:.4f}")
        ious = [k for k in row if k.startswith("iou_")]
        if ious:
            parts.append("IoU " + " ".join(f"{k[4:]} {row[k]:.3f}" for k in ious))
    parts.append(f"lr {row['lr']:.2e}")
    parts.append(f"{row['seconds']:.1f}s ({row['images_per_s']:.1f} img/s)")
    return " | ".join(parts)
