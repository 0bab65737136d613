"""The one card writer: README.md of model folders, ensemble folders and their Hub repos.

Rendered with huggingface_hub's ``ModelCard.from_template`` from one Jinja template. Its
source of truth is ``model_cards/glacier_model_card.md`` in the repository; the package
ships a copy as ``glacier/templates/glacier_model_card.md`` (what an installed glacier
reads) and ``tests/test_hub_card.py`` fails when the two differ. Edit the first, copy it
to the second.

The card's YAML front matter (library, tags, base model, a ``model-index`` of eval results
with metric ids the Hub knows) is what the Hub indexes; the rest is written for people
and derived from the model's own metadata (its bands say which sensor it was trained on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

from glacier.artifacts.model_config import GLACIER_KEY, ModelMeta
from glacier.domain import CANONICAL_BANDS, CLASS_NAMES, COMPETITION_BANDS, canonical_band
from glacier.errors import DataError

TEMPLATE_NAME = "glacier_model_card.md"
LICENSE = "apache-2.0"
LIBRARY = "segmentation-models-pytorch"
TAGS = (
    "segmentation-models-pytorch", "semantic-segmentation", "pytorch", "glacier", "glacier-mapping",
    "remote-sensing", "satellite-imagery", "landsat", "multispectral",
)  # fmt: skip
DISTRIBUTION = "glacier-segmentation"
"""glacier's distribution name (pyproject.toml): ``glacier`` on PyPI is an unrelated project."""
METRIC_IDS = {"mcc": "matthews_correlation", "iou": "iou", "miou": "mean_iou"}
"""Hub metric ids (those of the ``evaluate`` library) of glacier's metrics."""


@dataclass(frozen=True)
class Sensor:
    code: str
    """The prefix ``glacier.domain.canonical_band`` takes (``L7:B5``)."""
    name: str
    tag: str


SENSORS = (
    Sensor("L7", "Landsat 7 ETM+", "landsat-7"),
    Sensor("L8", "Landsat 8/9 OLI/TIRS", "landsat-8"),
)


@dataclass(frozen=True)
class Dataset:
    key: str
    """The prepared manifest's ``dataset``."""
    index_id: str
    """Its name in the card's ``model-index``."""
    name: str
    sensor: str
    url: str | None = None
    hub_id: str | None = None
    """Its Hugging Face dataset id; neither dataset is on the Hub today."""


DATASETS = {
    d.key: d
    for d in (
        Dataset("competition", "glacierhack-2025", "GlacierHack 2025 (Landsat 8/9 tiles, Himalaya)", "L8"),
        Dataset(
            "hkh",
            "hkh-glacier-mapping",
            "HKH Glacier Mapping (Landsat 7, ICIMOD 2011 labels)",
            "L7",
            url="https://lila.science/datasets/hkh-glacier-mapping",
        ),
    )
}


def template_text() -> str:
    """The card template shipped with the package."""
    return resources.files("glacier").joinpath("templates", TEMPLATE_NAME).read_text(encoding="utf-8")


def render_card(
    meta: ModelMeta,
    *,
    ensemble: dict | None = None,
    cv_summary: dict | None = None,
    repo_id: str | None = None,
    states: bool = False,
) -> str:
    """The card (README.md text) of the model ``meta`` describes.

    ``ensemble`` is an ensemble folder's ``ensemble.json`` (``meta`` is then its first
    member's); ``cv_summary`` a cross-validation summary ``{"folds": [{"fold": 0, "mcc": ..,
    "iou": {class: ..}} ...]}`` (a fold's scores may sit under ``"metrics"``); ``repo_id``
    fills the usage code; ``states`` says the repo also holds training states (``states/``).
    """
    from huggingface_hub import ModelCard, ModelCardData

    metrics, metrics_source = _headline_metrics(meta, ensemble)
    sensor = model_sensor(meta)
    datasets = _datasets(meta)
    title = _title(meta, ensemble, repo_id)
    card_data = ModelCardData(
        library_name=LIBRARY,
        license=LICENSE,
        tags=[*TAGS, *([sensor.tag] if sensor else [])],
        pipeline_tag="image-segmentation",
        base_model=_hub_source(meta),
        datasets=[d.hub_id for d in datasets if d.hub_id] or None,
        metrics=sorted({METRIC_IDS[k] for k in _metric_keys(metrics)}) or None,
        model_name=title,
        eval_results=_eval_results(metrics, datasets[:1]) or None,
    )
    card = ModelCard.from_template(
        card_data,
        template_str=template_text(),
        title=title,
        model=_model_rows(meta),
        bands=_band_rows(meta),
        sensor=_sensor_text(meta, sensor),
        normalization=_normalization_rows(meta),
        classes=[
            {"index": i, "name": n, "value": v}
            for i, (n, v) in enumerate(zip(meta.classes, meta.class_values, strict=True))
        ],
        metrics=_metric_rows(metrics),
        metrics_source=metrics_source,
        cv=_cv_table(cv_summary) if cv_summary else None,
        ensemble=_ensemble_table(ensemble) if ensemble else None,
        datasets=[{"name": d.name, "url": d.url} for d in datasets],
        training_rows=_training_rows(meta),
        usage=_usage(meta, ensemble, repo_id),
        states=states,
    )
    return str(card)


def _headline_metrics(meta: ModelMeta, ensemble: dict | None) -> tuple[dict, str]:
    """The scores the card leads with, and what they are: the ensemble's own when it has
    any, else the model's (an ensemble's first member's)."""
    if ensemble and _flat_scores(ensemble.get("metrics") or {}):
        return ensemble["metrics"], "Validation scores of the ensemble"
    return meta.metrics or {}, "Validation scores of this model" + (" (first member)" if ensemble else "")


def model_sensor(meta: ModelMeta) -> Sensor | None:
    """The sensor whose band numbering ``meta.sensor_bands`` follow (or, when they are not
    recorded, the sensor of the training dataset); None if neither says."""
    if meta.sensor_bands:
        for sensor in SENSORS:
            if all(_is_band(sensor, s, b) for s, b in zip(meta.sensor_bands, meta.bands, strict=False)):
                return sensor
        return None
    dataset = DATASETS.get(str(meta.training.get("dataset")))
    return next((s for s in SENSORS if dataset and s.code == dataset.sensor), None)


def _is_band(sensor: Sensor, sensor_band: str, band: str) -> bool:
    try:
        return canonical_band(f"{sensor.code}:{sensor_band}") == band
    except DataError:
        return False


# ----------------------------------------------------------------------------- pieces
def _title(meta: ModelMeta, ensemble: dict | None, repo_id: str | None) -> str:
    if repo_id:
        return repo_id.split("/")[-1]
    name = meta.training.get("name")
    kind = f"{meta.arch_config.get('architecture', 'model')}-{meta.arch_config.get('encoder', '')}".strip("-")
    if ensemble:
        return f"glacier ensemble of {len(ensemble.get('members') or [])} {kind}"
    return f"glacier {name}" if name and name != "run" else f"glacier {kind}"


def _datasets(meta: ModelMeta) -> list[Dataset]:
    """The training dataset, then the pretraining dataset (as the prepared manifests name them)."""
    found = [meta.training.get(key) for key in ("dataset", "pretrain_dataset")]
    keys = list(dict.fromkeys(str(k) for k in found if k))
    return [DATASETS.get(k) or Dataset(k, k, k, sensor="") for k in keys]


def _hub_source(meta: ModelMeta) -> str | None:
    """The Hub repo this model was fine-tuned from (only when it was initialised from one)."""
    source = (meta.training.get("provenance") or {}).get("init_from_hub") or {}
    return source.get("repo_id") if isinstance(source, dict) else None


def _init_text(meta: ModelMeta) -> str | None:
    provenance = meta.training.get("provenance") or {}
    repo_id = _hub_source(meta)
    if repo_id:
        return f"the Hub model [{repo_id}](https://huggingface.co/{repo_id}) (`base_model`)"
    if provenance.get("init_from"):
        pretrain = meta.training.get("pretrain_dataset")
        trained = f", trained on {DATASETS[pretrain].name}" if pretrain in DATASETS else ""
        return f"a local model folder (`{provenance['init_from']}`{trained}), not a Hub model"
    weights = _get(meta.training, ("model", "encoder_weights"))
    return f"random weights (encoder weights: {weights})" if weights else None


def _eval_results(metrics: dict, datasets: list[Dataset]) -> list:
    from huggingface_hub import EvalResult

    dataset = datasets[0] if datasets else Dataset("", "glacier-validation", "glacier validation split", "")
    common = {
        "task_type": "image-segmentation",
        "task_name": "Glacier segmentation",
        "dataset_type": dataset.hub_id or dataset.index_id,
        "dataset_name": dataset.name,
        "dataset_split": "validation",
    }
    scores = [("mcc", "MCC", None, metrics.get("mcc"))]
    scores += [("iou", f"IoU {name}", name, value) for name, value in _iou(metrics).items()]
    scores.append(("miou", "mean IoU", None, metrics.get("miou")))
    return [
        EvalResult(
            metric_type=METRIC_IDS[key],
            metric_name=label,
            metric_config=config,
            metric_value=_round(value),
            **common,
        )
        for key, label, config, value in scores
        if _is_number(value)
    ]


def _metric_keys(metrics: dict) -> list[str]:
    keys = [k for k in ("mcc", "miou") if _is_number(metrics.get(k))]
    return keys + (["iou"] if _iou(metrics) else [])


def _model_rows(meta: ModelMeta) -> dict:
    arch = meta.arch_config
    return {
        "architecture": arch.get("architecture", "?"),
        "boundary_head": bool(arch.get("boundary_head")),
        "encoder": arch.get("encoder", "?"),
        "encoder_depth": arch.get("encoder_depth", "?"),
        "stride": 2 ** int(arch.get("encoder_depth", 5)),
        "decoder_channels": arch.get("decoder_channels") or "default",
        "in_channels": arch.get("in_channels", len(meta.bands)),
    }


def _band_rows(meta: ModelMeta) -> list[dict]:
    sensor = meta.sensor_bands or (None,) * len(meta.bands)
    return [
        {"name": band, "sensor": s or "-", "description": CANONICAL_BANDS.get(band, "-")}
        for band, s in zip(meta.bands, sensor, strict=False)
    ]


def _sensor_text(meta: ModelMeta, sensor: Sensor | None) -> dict:
    """What the card says about the sensor: its name and the bands in its numbering."""
    if sensor is None:
        return {"name": None, "bands": ", ".join(meta.bands)}
    numbered = meta.sensor_bands or ()
    pairs = [f"{s} ({b})" for s, b in zip(numbered, meta.bands, strict=False)] or list(meta.bands)
    others = [s.name for s in SENSORS if s is not sensor]
    return {"name": sensor.name, "bands": ", ".join(pairs), "others": ", ".join(others)}


def _normalization_rows(meta: ModelMeta) -> list[dict]:
    stats = meta.normalization
    return [
        {"band": b, "mean": _fmt(m, 6), "std": _fmt(s, 6)}
        for b, m, s in zip(stats.bands, stats.mean, stats.std, strict=False)
    ]


def _usage(meta: ModelMeta, ensemble: dict | None, repo_id: str | None) -> dict:
    """Names the usage code refers to: where the model is, and how smp finds its config."""
    members = [m["path"] for m in (ensemble or {}).get("members") or []]
    return {
        "source": repo_id or ("ENSEMBLE_DIR" if ensemble else "MODEL_DIR"),
        "on_hub": repo_id is not None,
        "glacier_key": GLACIER_KEY,
        "stride": 2 ** int(meta.arch_config.get("encoder_depth", 5)),
        "members": members,
        "distribution": DISTRIBUTION,
        "reads_competition_folders": all(b in COMPETITION_BANDS for b in meta.bands),
    }


def _iou(scores: dict) -> dict[str, float]:
    iou = scores.get("iou")
    if isinstance(iou, dict):
        return {str(k): float(v) for k, v in iou.items() if _is_number(v)}
    if isinstance(iou, (list, tuple)):
        return {CLASS_NAMES[i]: float(v) for i, v in enumerate(iou[: len(CLASS_NAMES)]) if _is_number(v)}
    prefix = "iou_"
    return {k[len(prefix) :]: float(v) for k, v in scores.items() if k.startswith(prefix) and _is_number(v)}


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
                "seed": "-" if m.get("seed") is None else m["seed"],
                "fold": "all" if m.get("fold") is None else m["fold"],
                "cells": [_fmt(s.get(c)) for c in columns],
            }
            for m, s in scored
        ],
    }


_TRAINING_ROWS = (
    ("epochs", ("training", "epochs")),
    ("batch size (per process)", ("training", "batch_size")),
    ("optimizer", ("training", "optimizer", "name")),
    ("learning rate", ("training", "optimizer", "lr")),
    ("scheduler", ("training", "scheduler", "name")),
    ("crop size", ("data", "crop_size")),
    ("validation fold", ("data", "fold")),
    ("sampler", ("training", "sampler", "name")),
    ("seed", ("training", "seed")),
    ("glacier version", ("created_by",)),
)


def _training_rows(meta: ModelMeta) -> list[dict]:
    training = meta.training
    rows = [{"key": "dataset", "value": d.name} for d in _datasets(meta)[:1]]
    init = _init_text(meta)
    if init:
        rows.append({"key": "initialised from", "value": init})
    loss = _get(training, ("training", "loss")) or {}
    weights = [loss.get(k) for k in ("focal_weight", "dice_weight", "mcc_weight", "boundary_weight")]
    for label, path in _TRAINING_ROWS:
        value = _get(training, path)
        if value is not None and value != "":
            rows.append({"key": label, "value": value})
        if label == "learning rate" and any(w is not None for w in weights):
            rows.append(
                {"key": "loss weights (focal, dice, mcc, boundary)", "value": ", ".join(map(str, weights))}
            )
    return rows


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
