"""The per-epoch record of a run: the training loss summed over the epoch, the row that goes
into ``metrics.csv`` (glacier/artifacts/run.py writes it) and the one line printed."""

from __future__ import annotations

from typing import Any

import torch

from glacier.training.step import StepOutput


class EpochSums:
    """Running sums of the training loss (and its parts) over one epoch, on the device.

    ``saved`` (``to_dict`` of an unfinished epoch, from a state saved mid-epoch) continues
    those sums, so a resumed epoch reports the same loss as an uninterrupted one.
    """

    def __init__(self, device, saved: dict[str, Any] | None = None) -> None:
        self.device = device
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.parts: dict[str, torch.Tensor] = {}
        self.images = 0
        self.batches = 0
        if saved:
            self.loss += saved["loss"]
            self.parts = {
                k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in saved["parts"].items()
            }
            self.images, self.batches = int(saved["images"]), int(saved["batches"])

    def add(self, out: StepOutput, images: int) -> None:
        self.loss += out.loss.double()
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
        }

    def reduced(self, accelerator) -> dict[str, float]:
        """Mean loss (and parts) per batch over all processes, and the total image count."""
        keys = sorted(self.parts)
        local = torch.stack(
            [self.loss, *(self.parts[k] for k in keys)]
            + [torch.tensor(float(self.batches), dtype=torch.float64, device=self.device)]
            + [torch.tensor(float(self.images), dtype=torch.float64, device=self.device)]
        )
        total = accelerator.reduce(local, reduction="sum") if accelerator.num_processes > 1 else local
        values = total.tolist()
        batches = max(values[-2], 1.0)
        result = {"train_loss": values[0] / batches}
        result.update({f"train_{k}": v / batches for k, v in zip(keys, values[1:-2], strict=True)})
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
    if "val_mcc" in row:
        parts.append(f"val loss {row['val_loss']:.4f}")
        parts.append(f"MCC {row['val_mcc']:.4f}")
        ious = [k for k in row if k.startswith("iou_")]
        if ious:
            parts.append("IoU " + " ".join(f"{k[4:]} {row[k]:.3f}" for k in ious))
    parts.append(f"lr {row['lr']:.2e}")
    parts.append(f"{row['seconds']:.1f}s ({row['images_per_s']:.1f} img/s)")
    return " | ".join(parts)
