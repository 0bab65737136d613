"""Score folders of predicted masks against the truth, as the competition does.

    result = evaluate_folders("predictions/", "Test_labels/", plots_dir="plots/")
    print(format_report(result))

Both folders hold single-band GeoTIFF masks in the competition encoding (0/85/170/255),
paired by tile id (``img001.tif`` <-> ``001``). The MCC is computed over all pixels of all
images together (sklearn's multiclass ``matthews_corrcoef`` on the flattened masks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from glacier import atomic
from glacier.data.raster import read_single_band
from glacier.domain import CLASS_NAMES, NUM_CLASSES, encoded_to_index, tile_id_from_name
from glacier.errors import DataError
from glacier.metrics import confusion_matrix, matthews_corrcoef, metrics_from_confusion
from glacier.outputs import refuse_inputs, require_kind

MASK_SUFFIXES = (".tif", ".tiff")


def mask_files(folder: str | Path, role: str) -> dict[str, Path]:
    """GeoTIFF masks of ``folder`` by tile id; ``role`` ("prediction"/"truth") names it in errors."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{role} folder {folder} not found")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in MASK_SUFFIXES:
            continue
        tile = tile_id_from_name(path.name)
        if tile in files:
            raise DataError(
                f"{role} folder {folder}: {files[tile].name} and {path.name} share tile id {tile!r}"
            )
        files[tile] = path
    if not files:
        raise DataError(f"{role} folder {folder} has no .tif masks")
    return files


def pair_mask_files(pred_dir: str | Path, truth_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """``(tile_id, prediction, truth)`` for every tile; a DataError if the tile ids differ."""
    preds, truths = mask_files(pred_dir, "prediction"), mask_files(truth_dir, "truth")
    missing_pred = sorted(set(truths) - set(preds))
    missing_truth = sorted(set(preds) - set(truths))
    if missing_pred or missing_truth:
        problems = []
        if missing_pred:
            problems.append(f"no prediction in {pred_dir} for tile ids {_short(missing_pred)}")
        if missing_truth:
            problems.append(f"no truth in {truth_dir} for tile ids {_short(missing_truth)}")
        raise DataError("prediction and truth folders do not match: " + "; ".join(problems))
    return [(tile, preds[tile], truths[tile]) for tile in sorted(truths)]


def evaluate_folders(
    pred_dir: str | Path,
    truth_dir: str | Path,
    plots_dir: str | Path | None = None,
    json_path: str | Path | None = None,
) -> dict[str, Any]:
    """Metrics of predicted masks against the truth, over all pixels of all images.

    Returns ``metrics_from_confusion``'s dict (mcc, iou, f1, miou, confusion, support...)
    plus ``images`` (count) and ``per_image`` ({id, mcc, pixel_accuracy}). ``plots_dir``
    receives ``confusion.png`` and one ``overlay_<id>.png`` per image; ``json_path`` the
    result as JSON.
    """
    for option, path, kind in (("--plots", plots_dir, "folder"), ("--json", json_path, "file")):
        if path is not None:
            require_kind(path, kind, option)
            refuse_inputs(path, [pred_dir, truth_dir], option)
    pairs = pair_mask_files(pred_dir, truth_dir)
    if plots_dir is not None:
        from glacier.plots import save_confusion_plot, save_overlay

    total = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    per_image = []
    for tile, pred_path, truth_path in pairs:
        pred = encoded_to_index(read_single_band(pred_path)[0], source=str(pred_path))
        truth = encoded_to_index(read_single_band(truth_path)[0], source=str(truth_path))
        if pred.shape != truth.shape:
            raise DataError(
                f"{pred_path} is {pred.shape[1]}x{pred.shape[0]} but {truth_path} is {truth.shape[1]}x{truth.shape[0]}"
            )
        cm = confusion_matrix(pred, truth)
        total += cm
        per_image.append(
            {
                "id": tile,
                "mcc": matthews_corrcoef(cm),
                "pixel_accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
            }
        )
        if plots_dir is not None:
            save_overlay(
                truth,
                pred,
                Path(plots_dir) / f"overlay_{tile}.png",
                title=f"{tile}  (MCC {per_image[-1]['mcc']:.3f})",
            )

    result = {**metrics_from_confusion(total), "images": len(pairs), "per_image": per_image}
    if plots_dir is not None:
        save_confusion_plot(
            total,
            Path(plots_dir) / "confusion.png",
            title=f"Confusion, {len(pairs)} images, MCC {result['mcc']:.4f}",
        )
    if json_path is not None:
        atomic.write_json(json_path, result)
    return result


def format_report(result: dict[str, Any]) -> str:
    """A plain-text table of an evaluation result: MCC, per-class IoU/F1 and pixel counts."""
    confusion = np.asarray(result["confusion"])
    predicted = confusion.sum(axis=0)
    lines = [
        f"images: {result['images']}   pixels: {result['pixels']:,}",
        f"MCC:    {result['mcc']:.4f}   mIoU: {_fmt(result['miou'])}   pixel accuracy: {_fmt(result['pixel_accuracy'])}",
        "",
        f"{'class':<12}{'IoU':>8}{'F1':>8}{'truth px':>14}{'predicted px':>15}",
    ]
    for k, name in enumerate(CLASS_NAMES):
        lines.append(
            f"{name:<12}{_fmt(result['iou'][name]):>8}{_fmt(result['f1'][name]):>8}"
            f"{result['support'][name]:>14,}{int(predicted[k]):>15,}"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _short(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return f"{shown} (+{len(ids) - limit} more)" if len(ids) > limit else shown
