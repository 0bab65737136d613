"""Model folders: a trained model that describes itself.

    MODEL_DIR/model.safetensors   weights ("net.*" = the plain smp model, "boundary_head.*")
    MODEL_DIR/config.json         architecture, bands, class map, normalisation, metrics, training
    MODEL_DIR/README.md           model card

``load_model_folder`` rebuilds the model from config.json alone; the folder is written
atomically, so a crash never leaves a half-written model under the final name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from glacier import atomic
from glacier.domain import CLASS_NAMES, CLASS_VALUES
from glacier.errors import ConfigError, ModelError
from glacier.model_meta import (
    ARCH_KEYS,
    CARD_FILE,
    CONFIG_FILE,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    WEIGHTS_FILE,
    ModelMeta,
    read_model_meta,
)
from glacier.models.factory import GlacierModel, build_from_arch_config
from glacier.normalization import BandStats


def inference_state_dict(model: GlacierModel) -> dict[str, torch.Tensor]:
    """The plain smp model's state dict: what the submission's smp 0.3.x model loads."""
    return model.net.state_dict()


def model_config_dict(
    model: GlacierModel,
    *,
    normalization: BandStats,
    metrics: dict | None = None,
    training: dict | None = None,
    sensor_bands: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The config.json content for ``model`` (see docs/ARCHITECTURE.md, model folder)."""
    if tuple(normalization.bands) != model.bands:
        raise ModelError(
            f"normalisation statistics are for bands {list(normalization.bands)} "
            f"but the model reads {list(model.bands)}"
        )
    arch = model.arch_config
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        **{key: arch[key] for key in ARCH_KEYS},
        "in_channels": arch["in_channels"],
        "bands": list(model.bands),
        "sensor_bands": list(sensor_bands) if sensor_bands is not None else None,
        "classes": list(CLASS_NAMES[: arch["num_classes"]]),
        "class_values": list(CLASS_VALUES[: arch["num_classes"]]),
        "normalization": normalization.to_dict(),
        "metrics": metrics or {},
        "training": training or {},
    }


def save_model_folder(
    model: GlacierModel,
    folder: str | Path,
    *,
    normalization: BandStats,
    metrics: dict | None = None,
    training: dict | None = None,
    sensor_bands: Sequence[str] | None = None,
    card: str | None = None,
) -> Path:
    """Write ``model`` as a model folder (weights, config.json, model card), atomically.

    ``training`` is the resolved config plus provenance; ``card`` overrides the generated
    model card. An existing folder at ``folder`` is replaced.
    """
    folder = Path(folder)
    config = model_config_dict(
        model, normalization=normalization, metrics=metrics, training=training, sensor_bands=sensor_bands
    )
    # safetensors wants contiguous CPU tensors; detach so a model mid-training can be saved.
    weights = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
    with atomic.atomic_dir(folder) as tmp:
        save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": MODEL_FORMAT})
        atomic.write_json(tmp / CONFIG_FILE, config)
        atomic.write_text(tmp / CARD_FILE, card if card is not None else _render_card(config))
    return folder


def load_model_folder(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[GlacierModel, ModelMeta]:
    """Rebuild the model of a model folder from its config.json and load its weights.

    Returns ``(model, meta)`` with the model in eval mode on ``device``. A missing or
    damaged folder is a ModelError naming the file.
    """
    meta = read_model_meta(folder)
    weights_path = Path(folder) / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelError(f"{weights_path}: missing; the model folder is incomplete")
    try:
        model = build_from_arch_config(meta.arch_config, meta.bands)
    except ConfigError as exc:
        raise ModelError(f"{Path(folder) / CONFIG_FILE}: {exc}") from None
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{weights_path}: cannot read the weights ({exc}); is the file truncated?") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(
            f"{weights_path}: weights do not fit the architecture in config.json ({exc})"
        ) from None
    return model.to(device).eval(), meta


def _render_card(config: dict[str, Any]) -> str:
    try:
        from glacier.hub.card import render_model_card
    except ImportError:
        return _plain_card(config)
    return render_model_card(config)


def _plain_card(config: dict[str, Any]) -> str:
    head = "boundary-aware " if config["boundary_head"] else ""
    metrics = config.get("metrics") or {}
    lines = [
        "# Glacier segmentation model",
        "",
        f"A {head}{config['architecture']} ({config['encoder']} encoder, depth {config['encoder_depth']}) "
        f"that labels each pixel as one of: {', '.join(config['classes'])} "
        f"(mask values {', '.join(map(str, config['class_values']))}).",
        "",
        f"- Input bands, in order: {', '.join(config['bands'])}",
        "- Normalisation: per band (x - mean) / std with the statistics in config.json; NaN -> 0.",
    ]
    if metrics.get("mcc") is not None:
        lines.append(f"- Validation MCC: {metrics['mcc']:.4f}")
    lines += ["", "Load it with `glacier.models.load_model_folder(path)`.", ""]
    return "\n".join(lines)
