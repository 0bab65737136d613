"""A model folder's ``config.json``: its layout (version 2), the reader of version 1, ``ModelMeta``.

Version 2 is segmentation-models-pytorch's own config at the top level, so that
``smp.from_pretrained(folder_or_repo)`` rebuilds the network, and glacier's keys in one
block beside it::

    {"_model_class": "Unet", "encoder_name": "resnet34", "encoder_depth": 5,
     "encoder_weights": null, "decoder_channels": [256, 128, 64, 32, 16],
     "in_channels": 5, "classes": 4, ... (every other argument smp's hub mixin records),
     "_glacier": {"format": "glacier-model", "format_version": 2, "boundary_head": true,
                  "bands": [...], "sensor_bands": [...], "class_names": [...],
                  "class_values": [0, 85, 170, 255], "normalization": {...},
                  "calibration": null, "metrics": {...}, "training": {...}}}

``from_pretrained`` passes every top-level key to the model's constructor, which forwards
unknown ones into the encoder; smp's constructors drop keys that start with ``_``, which is
why glacier's block is ``_glacier``. Version 1 (glacier 0.1) kept glacier's keys at the top
level and smp's under other names; it is converted on read. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glacier.errors import DataError, ModelError
from glacier.normalization import BandStats

MODEL_FORMAT = "glacier-model"
MODEL_FORMAT_VERSION = 2
GLACIER_KEY = "_glacier"
SMP_CLASS_KEY = "_model_class"
_V1_ARCH_KEYS = ("architecture", "boundary_head", "encoder", "encoder_depth", "decoder_channels")


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
    """glacier's description of the network (``GlacierModel.arch_config``)."""
    calibration: dict[str, Any] | None = None
    """The decision rule fitted on out-of-fold predictions (glacier/decisions/rule.py:
    ``Calibration.to_dict()``); None: the argmax of the softmax."""
    format_version: int = MODEL_FORMAT_VERSION
    """The version the folder was written in (1: converted on read)."""
    path: Path | None = None


def config_version(config: Any, config_path: Path | None = None) -> int | None:
    """The glacier model format version of a parsed config.json, or None if it is not one.

    A ``format_version`` that is not an integer is a ModelError naming ``config_path``.
    """
    if not isinstance(config, dict):
        return None
    block = config.get(GLACIER_KEY)
    if isinstance(block, dict) and block.get("format") == MODEL_FORMAT:
        return format_version(block, config_path, default=0)
    if config.get("format") == MODEL_FORMAT:
        return format_version(config, config_path, default=1)
    return None


def format_version(block: dict[str, Any], path: Path | None, default: int) -> int:
    """``block["format_version"]`` (``default`` when absent), checked to be an integer."""
    version = block.get("format_version", default)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ModelError(
            f"{path or 'config'}: format_version is {version!r}, not an integer; the file is damaged "
            "or was not written by glacier"
        )
    return version


def build_config(
    smp_config: dict[str, Any],
    *,
    boundary_head: bool,
    bands: tuple[str, ...],
    sensor_bands: tuple[str, ...] | None,
    classes: tuple[str, ...],
    class_values: tuple[int, ...],
    normalization: BandStats,
    metrics: dict | None = None,
    training: dict | None = None,
    calibration: dict | None = None,
) -> dict[str, Any]:
    """The version-2 config.json for a network that ``smp_config`` rebuilds."""
    if tuple(normalization.bands) != tuple(bands):
        raise ModelError(
            f"normalisation statistics are for bands {list(normalization.bands)} "
            f"but the model reads {list(bands)}"
        )
    return {
        **smp_config,
        GLACIER_KEY: {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "boundary_head": bool(boundary_head),
            "bands": list(bands),
            "sensor_bands": list(sensor_bands) if sensor_bands is not None else None,
            "class_names": list(classes),
            "class_values": [int(v) for v in class_values],
            "normalization": normalization.to_dict(),
            "calibration": calibration,
            "metrics": metrics or {},
            "training": training or {},
        },
    }


def parse_config(config: dict[str, Any], config_path: Path) -> ModelMeta:
    """``ModelMeta`` from a parsed config.json of either version; a ModelError names the file."""
    version = config_version(config, config_path)
    if version is None:
        raise ModelError(
            f"{config_path}: not a glacier model config (no {GLACIER_KEY!r} block of format {MODEL_FORMAT!r})"
        )
    if version > MODEL_FORMAT_VERSION:
        raise ModelError(
            f"{config_path}: format_version {version} is newer than this glacier reads "
            f"({MODEL_FORMAT_VERSION}); upgrade glacier"
        )
    try:
        fields = _v1_fields(config) if version == 1 else _v2_fields(config)
        meta = ModelMeta(**fields, format_version=version, path=config_path.parent)
    except KeyError as exc:
        raise ModelError(f"{config_path}: missing key {exc}") from None
    except (TypeError, ValueError, AttributeError, DataError) as exc:
        raise ModelError(f"{config_path}: invalid value ({exc})") from None
    _check_consistent(meta, config_path)
    return meta


def _v2_fields(config: dict[str, Any]) -> dict[str, Any]:
    block = config[GLACIER_KEY]
    classes = tuple(block["class_names"])
    arch_config = {
        "architecture": config[SMP_CLASS_KEY],
        "boundary_head": bool(block["boundary_head"]),
        "encoder": config["encoder_name"],
        "encoder_depth": int(config["encoder_depth"]),
        "decoder_channels": config.get("decoder_channels"),
        "in_channels": int(config["in_channels"]),
        "num_classes": int(config["classes"]),
    }
    return {
        **_common_fields(block, classes),
        "arch_config": arch_config,
        "calibration": block.get("calibration"),
    }


def _v1_fields(config: dict[str, Any]) -> dict[str, Any]:
    classes = tuple(config["classes"])
    arch_config = {key: config[key] for key in _V1_ARCH_KEYS}
    arch_config["in_channels"] = int(config["in_channels"])
    arch_config["num_classes"] = len(classes)
    return {**_common_fields(config, classes), "arch_config": arch_config}


def _common_fields(block: dict[str, Any], classes: tuple[str, ...]) -> dict[str, Any]:
    return {
        "bands": tuple(block["bands"]),
        "sensor_bands": tuple(block["sensor_bands"]) if block.get("sensor_bands") else None,
        "classes": classes,
        "class_values": tuple(int(v) for v in block["class_values"]),
        "normalization": BandStats.from_dict(block["normalization"]),
        "metrics": block.get("metrics") or {},
        "training": block.get("training") or {},
    }


def _check_consistent(meta: ModelMeta, config_path: Path) -> None:
    arch = meta.arch_config
    if len(meta.bands) != arch["in_channels"] or meta.normalization.bands != meta.bands:
        raise ModelError(
            f"{config_path}: bands {list(meta.bands)}, in_channels {arch['in_channels']} and "
            f"normalisation bands {list(meta.normalization.bands)} disagree"
        )
    if not (len(meta.classes) == len(meta.class_values) == arch["num_classes"]):
        raise ModelError(
            f"{config_path}: {arch['num_classes']} output classes, but class names {list(meta.classes)} "
            f"and class values {list(meta.class_values)}"
        )
