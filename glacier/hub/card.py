"""The model card: README.md of a model or ensemble folder and of its Hub repo.

Rendered with huggingface_hub's ``ModelCard.from_template`` from one Jinja template. Its
source of truth is ``model_cards/glacier_model_card.md`` in the repository; the package
ships a copy as ``glacier/templates/glacier_model_card.md`` (what an installed glacier
reads) and ``tests/test_hub_card.py`` fails when the two differ. Edit the first, copy it
to the second.

The card's YAML front matter (library, tags, datasets, a ``model-index`` of eval results)
is what the Hub indexes and validates; everything else is written for people.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

from glacier.domain import CANONICAL_BANDS, CLASS_NAMES, CLASS_VALUES

TEMPLATE_NAME = "glacier_model_card.md"
LICENSE = "apache-2.0"
TAGS = ("segmentation", "glacier", "remote-sensing", "landsat", "pytorch", "segmentation-models-pytorch")
# Display ids for the datasets a prepared manifest names ("dataset": "competition" | "hkh").
DATASET_IDS = {"competition": "glacierhack-2025", "hkh": "hkh-glacier-mapping"}
DATASET_NAMES = {
    "glacierhack-2025": "GlacierHack 2025 (Landsat 8/9, Himalaya)",
    "hkh-glacier-mapping": "HKH Glacier Mapping (Landsat 7, ICIMOD 2011 labels)",
}


def template_text() -> str:
    """The card template shipped with the package."""
    return resources.files("glacier").joinpath("templates", TEMPLATE_NAME).read_text(encoding="utf-8")


def render_model_card(
    config: dict,
    *,
    ensemble: dict | None = None,
    cv_summary: dict | None = None,
    repo_id: str | None = None,
) -> str:
    """Render the model card (README.md text) for a model folder's ``config.json``.

    ``ensemble`` is an ensemble folder's ``ensemble.json`` (members and their scores);
    ``cv_summary`` a cross-validation summary: ``{"folds": [{"fold": 0, "mcc": .., "iou":
    {class: ..}} ...]}`` (a fold's scores may also sit under ``"metrics"``); its mean and
    std are computed here. ``repo_id`` fills the usage commands.
    """
    from huggingface_hub import ModelCard, ModelCardData

    metrics = (ensemble or {}).get("metrics") or config.get("metrics") or {}
    metrics_source = "Validation scores of the ensemble" if ensemble and ensemble.get("metrics") else None
    if metrics_source is None:
        metrics_source = "Validation scores of this model" + (" (first member)" if ensemble else "")
    datasets = _datasets(config)
    title = _title(config, ensemble, repo_id)
    card_data = ModelCardData(
        library_name="glacier",
        license=LICENSE,
        tags=list(TAGS),
        datasets=datasets or None,
        pipeline_tag="image-segmentation",
        model_name=title,
        eval_results=_eval_results(metrics, datasets) or None,
    )
    card = ModelCard.from_template(
        card_data,
        template_str=template_text(),
        title=title,
        model=_model_rows(config),
        bands=_band_rows(config),
        normalization=_normalization_rows(config),
        classes=[
            {"index": i, "name": n, "value": v}
            for i, (n, v) in enumerate(zip(CLASS_NAMES, CLASS_VALUES, strict=True))
        ],
        metrics=_metric_rows(metrics),
        metrics_source=metrics_source,
        cv=_cv_table(cv_summary) if cv_summary else None,
        ensemble=_ensemble_table(ensemble) if ensemble else None,
        training_rows=_training_rows(config),
        repo_hint=repo_id or "USER/REPO",
        sensor_summary=_sensor_summary(config),
    )
    return str(card)


# ----------------------------------------------------------------------------- pieces
def _title(config: dict, ensemble: dict | None, repo_id: str | None) -> str:
    if repo_id:
        return repo_id.split("/")[-1]
    name = (config.get("training") or {}).get("name")
    kind = f"{config.get('architecture', 'model')}-{config.get('encoder', '')}".strip("-")
    if ensemble:
        return f"glacier ensemble of {len(ensemble.get('members') or [])} {kind}"
    return f"glacier {name}" if name and name != "run" else f"glacier {kind}"


def _datasets(config: dict) -> list[str]:
    training = config.get("training") or {}
    found = []
    for key in ("dataset", "pretrain_dataset"):
        value = training.get(key) or (training.get("provenance") or {}).get(key)
        if value:
            found.append(DATASET_IDS.get(value, value))
    return list(dict.fromkeys(found))


def _eval_results(metrics: dict, datasets: list[str]) -> list:
    from huggingface_hub import EvalResult

    dataset = datasets[-1] if datasets else "glacier-validation"
    common = {
        "task_type": "image-segmentation",
        "task_name": "Glacier segmentation",
        "dataset_type": dataset,
        "dataset_name": DATASET_NAMES.get(dataset, dataset),
        "dataset_split": "validation",
    }
    results = []
    if _is_number(metrics.get("mcc")):
        results.append(
            EvalResult(metric_type="mcc", metric_name="MCC", metric_value=_round(metrics["mcc"]), **common)
        )
    for name, value in _iou(metrics).items():
        results.append(
            EvalResult(
                metric_type="iou",
                metric_name=f"IoU {name}",
                metric_config=name,
                metric_value=_round(value),
                **common,
            )
        )
    return results


def _model_rows(config: dict) -> dict:
    return {
        "architecture": config.get("architecture", "?"),
        "boundary_head": bool(config.get("boundary_head")),
        "encoder": config.get("encoder", "?"),
        "encoder_depth": config.get("encoder_depth", "?"),
        "decoder_channels": config.get("decoder_channels") or "default",
        "in_channels": config.get("in_channels", len(config.get("bands") or [])),
    }


def _band_rows(config: dict) -> list[dict]:
    bands = config.get("bands") or []
    sensor = config.get("sensor_bands") or [None] * len(bands)
    return [
        {"name": band, "sensor": s or "-", "description": CANONICAL_BANDS.get(band, "-")}
        for band, s in zip(bands, sensor, strict=False)
    ]


def _normalization_rows(config: dict) -> list[dict]:
    stats = config.get("normalization") or {}
    return [
        {"band": b, "mean": _fmt(m, 6), "std": _fmt(s, 6)}
        for b, m, s in zip(stats.get("bands", []), stats.get("mean", []), stats.get("std", []), strict=False)
    ]


def _iou(scores: dict) -> dict[str, float]:
    iou = scores.get("iou")
    if isinstance(iou, dict):
        return {str(k): float(v) for k, v in iou.items() if _is_number(v)}
    if isinstance(iou, (list, tuple)):
        return {CLASS_NAMES[i]: float(v) for i, v in enumerate(iou[: len(CLASS_NAMES)]) if _is_number(v)}
    return {
        name: float(scores[f"iou_{name}"]) for name in CLASS_NAMES if _is_number(scores.get(f"iou_{name}"))
    }


def _flat_scores(entry: dict) -> dict[str, float]:
    """``{"MCC": .., "IoU glacier": ..}`` from a metrics dict (or an entry holding one)."""
    scores = entry.get("metrics") if isinstance(entry.get("metrics"), dict) else entry
    flat = {}
    if _is_number(scores.get("mcc")):
        flat["MCC"] = float(scores["mcc"])
    for name, value in _iou(scores).items():
        flat[f"IoU {name}"] = value
    if _is_number(scores.get("miou")):
        flat["mean IoU"] = float(scores["miou"])
    return flat


def _metric_rows(metrics: dict) -> list[dict]:
    return [{"name": k, "value": _fmt(v)} for k, v in _flat_scores(metrics).items()]


def _cv_table(cv_summary: dict) -> dict | None:
    folds = [f for f in cv_summary.get("folds") or [] if isinstance(f, dict)]
    scored = [(f.get("fold", i), _flat_scores(f)) for i, f in enumerate(folds)]
    columns = list(dict.fromkeys(k for _, s in scored for k in s))
    if not columns:
        return None
    summary = []
    for column in columns:
        values = [s[column] for _, s in scored if column in s]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        summary.append(f"{mean:.4f} +/- {std:.4f}")
    return {
        "columns": columns,
        "rows": [{"fold": fold, "cells": [_fmt(s.get(c)) for c in columns]} for fold, s in scored],
        "summary": summary,
    }


def _ensemble_table(ensemble: dict) -> dict:
    members = [m for m in ensemble.get("members") or [] if isinstance(m, dict)]
    scored = [(m, _flat_scores(m)) for m in members]
    columns = list(dict.fromkeys(k for _, s in scored for k in s))[:3] or ["MCC"]
    return {
        "columns": columns,
        "members": [
            {
                "name": m.get("name", "?"),
                "seed": m.get("seed", "-"),
                "fold": m.get("fold", "-"),
                "cells": [_fmt(s.get(c)) for c in columns],
            }
            for m, s in scored
        ],
    }


def _training_rows(config: dict) -> list[dict]:
    training = config.get("training") or {}
    keys = [
        ("dataset", ("dataset",)),
        ("init from", ("model", "init_from")),
        ("epochs", ("training", "epochs")),
        ("batch size (per process)", ("training", "batch_size")),
        ("optimizer", ("training", "optimizer", "name")),
        ("learning rate", ("training", "optimizer", "lr")),
        ("scheduler", ("training", "scheduler", "name")),
        ("loss weights (focal, dice, mcc, boundary)", None),
        ("crop size", ("data", "crop_size")),
        ("validation fold", ("data", "fold")),
        ("sampler", ("training", "sampler", "name")),
        ("seed", ("training", "seed")),
        ("glacier version", ("created_by",)),
    ]
    rows = []
    for label, path in keys:
        if path is None:
            loss = _get(training, ("training", "loss")) or {}
            weights = [loss.get(k) for k in ("focal_weight", "dice_weight", "mcc_weight", "boundary_weight")]
            value = ", ".join(map(str, weights)) if any(w is not None for w in weights) else None
        else:
            value = _get(training, path)
        if value is not None and value != "":
            rows.append({"key": label, "value": value})
    return rows


def _sensor_summary(config: dict) -> str:
    sensor = [s for s in config.get("sensor_bands") or [] if s]
    bands = ", ".join(config.get("bands") or [])
    if sensor:
        return f"sensor bands {', '.join(sensor)} = {bands}"
    return bands or "see the table above"


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _round(value: float) -> float:
    return round(float(value), 4)


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{float(value):.{digits}f}" if _is_number(value) else "-"
