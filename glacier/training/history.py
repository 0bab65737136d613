"""The per-epoch record of a run: ``metrics.csv`` and the one line printed per epoch."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from glacier import atomic

LEADING_COLUMNS = ("epoch", "train_loss")
TRAILING_COLUMNS = ("lr", "seconds", "images_per_s")


class MetricsLog:
    """Rows of ``metrics.csv``, one per epoch, rewritten atomically after each epoch.

    The file is small (one row per epoch), so it is rewritten whole: a resumed run drops rows
    after the epoch it resumes from, and a column that first appears later (validation only
    every few epochs) still gets a header.
    """

    def __init__(self, path: str | Path, resume_after_epoch: int | None = None) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, object]] = []
        if resume_after_epoch is not None and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as handle:
                self.rows = [row for row in csv.DictReader(handle) if int(row["epoch"]) <= resume_after_epoch]

    def append(self, row: dict[str, object]) -> None:
        self.rows.append(dict(row))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.path, self._render())

    def columns(self) -> list[str]:
        seen: list[str] = []
        for row in self.rows:
            seen.extend(k for k in row if k not in seen)
        middle = [c for c in seen if c not in LEADING_COLUMNS + TRAILING_COLUMNS]
        return [*LEADING_COLUMNS, *middle, *TRAILING_COLUMNS]

    def _render(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
        return buffer.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return value


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
