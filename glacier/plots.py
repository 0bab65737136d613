"""Pictures of masks and metrics (matplotlib, Agg backend): one palette for every plot.

save_confusion_plot(cm, "confusion.png")
save_overlay(truth, pred, "img001.png", title="img001")     # truth | prediction | errors
rgb = colorize(indices)                                      # (H, W, 3) uint8
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from glacier.atomic import atomic_file  # noqa: E402
from glacier.domain import CLASS_NAMES, IGNORE_INDEX  # noqa: E402

CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (222, 214, 196),  # background: pale rock
    (66, 165, 245),  # glacier (clean ice): light blue
    (141, 85, 36),  # debris-covered glacier: brown
    (13, 27, 150),  # glacial lake: deep blue
)
"""RGB colour of each class index, shared by every overlay."""
IGNORE_COLOR = (0, 0, 0)
CORRECT_COLOR = (245, 243, 237)  # the faded background of the error panel
ERROR_COLOR = (220, 20, 60)


def colorize(indices: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 RGB in CLASS_COLORS (ignore: black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(CLASS_COLORS)] = CLASS_COLORS
    lut[ignore_index] = IGNORE_COLOR
    return lut[np.asarray(indices, dtype=np.uint8)]


def class_legend_handles(class_names: tuple[str, ...] = CLASS_NAMES) -> list[Patch]:
    return [
        Patch(facecolor=np.array(color) / 255, edgecolor="0.3", label=name)
        for name, color in zip(class_names, CLASS_COLORS, strict=False)
    ]


def save_overlay(
    truth: np.ndarray,
    pred: np.ndarray,
    path: str | Path,
    title: str = "",
    ignore_index: int = IGNORE_INDEX,
) -> Path:
    """Three panels (truth | prediction | errors) with a class legend, written as PNG."""
    # Correct pixels keep a faded truth colour for context; errors stand out in red.
    faded = (0.3 * colorize(truth, ignore_index) + 0.7 * 255).astype(np.uint8)
    errors = np.where((truth != pred)[..., None], np.array(ERROR_COLOR, np.uint8), faded)
    errors[truth == ignore_index] = IGNORE_COLOR
    valid = truth != ignore_index
    accuracy = float((truth[valid] == pred[valid]).mean()) if valid.any() else float("nan")
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.9), constrained_layout=True)
    panels = [
        ("truth", colorize(truth)),
        ("prediction", colorize(pred)),
        (f"errors ({1 - accuracy:.1%})", errors),
    ]
    for ax, (name, image) in zip(axes, panels, strict=True):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = class_legend_handles() + [
        Patch(facecolor=np.array(ERROR_COLOR) / 255, edgecolor="0.3", label="error"),
        Patch(facecolor=np.array(CORRECT_COLOR) / 255, edgecolor="0.3", label="correct (faded truth)"),
    ]
    fig.legend(
        handles=handles, loc="lower center", ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, -0.08)
    )
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def save_confusion_plot(
    cm: np.ndarray, path: str | Path, class_names: tuple[str, ...] = CLASS_NAMES, title: str = ""
) -> Path:
    """Row-normalised confusion matrix (share of each true class) annotated with counts."""
    counts = np.asarray(cm, dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=np.float64), where=rows > 0)
    names = list(class_names)[: counts.shape[0]]
    fig, ax = plt.subplots(figsize=(6.4, 5.4), constrained_layout=True)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of the true class")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            color = "white" if shares[i, j] > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{shares[i, j]:.1%}\n{counts[i, j]:,}",
                ha="center",
                va="center",
                color=color,
                fontsize=9,
            )
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth")
    ax.set_title(title or "Confusion matrix (rows sum to 100%)")
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    try:
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
