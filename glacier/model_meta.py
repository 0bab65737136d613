"""The model folder's description: file names, config.json format and its reader.

Torch-free on purpose: the ensemble folder, the Hub and the CLI check model folders
without importing torch; ``glacier.models.folder`` adds the weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glacier.errors import DataError, ModelError
from glacier.normalization import BandStats

MODEL_FORMAT = "glacier-model"
MODEL_FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
ARCH_KEYS = ("architecture", "boundary_head", "encoder", "encoder_depth", "decoder_channels")


@dataclass(frozen=True)
class ModelMeta:
    """What a model folder says about its model, besides the weights."""

    bands: tuple[str, ...]
    sensor_bands: tuple[str, ...] | None
    classes: tuple[str, ...]
    class_values: tuple[int, ...]
    normalization: BandStats
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    arch_config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def is_model_folder(path: str | Path) -> bool:
    """True if ``path`` looks like a model folder (config.json of the glacier-model format)."""
    config_path = Path(path) / CONFIG_FILE
    if not config_path.is_file() or not (Path(path) / WEIGHTS_FILE).is_file():
        return False
    try:
        return json.loads(config_path.read_text(encoding="utf-8")).get("format") == MODEL_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_model_meta(folder: str | Path) -> ModelMeta:
    """Read and check a model folder's config.json, without loading the weights."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found")
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise ModelError(f"{config_path}: missing; is {folder} a model folder (glacier finetune writes one)?")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{config_path}: not valid JSON ({exc}); the model folder is damaged") from None
    if not (folder / WEIGHTS_FILE).is_file():
        raise ModelError(f"{folder / WEIGHTS_FILE}: missing; the model folder is incomplete")
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise ModelError(f"{config_path}: not a glacier model config (format is not {MODEL_FORMAT!r})")
    if int(config.get("format_version", 0)) > MODEL_FORMAT_VERSION:
        raise ModelError(
            f"{config_path}: format_version {config['format_version']} is newer than this glacier "
            f"reads ({MODEL_FORMAT_VERSION}); upgrade glacier"
        )
    try:
        bands = tuple(config["bands"])
        classes = tuple(config["classes"])
        arch_config = {key: config[key] for key in ARCH_KEYS}
        arch_config["in_channels"] = int(config["in_channels"])
        arch_config["num_classes"] = len(classes)
        normalization = BandStats.from_dict(config["normalization"])
        meta = ModelMeta(
            bands=bands,
            sensor_bands=tuple(config["sensor_bands"]) if config.get("sensor_bands") else None,
            classes=classes,
            class_values=tuple(int(v) for v in config["class_values"]),
            normalization=normalization,
            metrics=config.get("metrics") or {},
            training=config.get("training") or {},
            arch_config=arch_config,
            path=folder,
        )
    except KeyError as exc:
        raise ModelError(f"{config_path}: missing key {exc}") from None
    except (TypeError, ValueError, DataError) as exc:
        raise ModelError(f"{config_path}: invalid value ({exc})") from None
    if len(bands) != arch_config["in_channels"] or normalization.bands != bands:
        raise ModelError(
            f"{config_path}: bands {list(bands)}, in_channels {arch_config['in_channels']} and "
            f"normalisation bands {list(normalization.bands)} disagree"
        )
    return meta
