"""ImageNet (or other) encoder weights for ``model.encoder_weights``, checked before building.

segmentation-models-pytorch 0.6 fetches an encoder's pretrained weights from the Hugging
Face Hub (``smp-hub/<encoder>.<weights>`` at a pinned revision: ``config.json`` and
``model.safetensors``) through the Hugging Face cache (``HF_HUB_CACHE``, by default
``$HF_HOME/hub``), and adapts the first convolution to any number of input bands (the RGB
filters repeated over the bands and scaled by 3 / bands). A file already in the cache is
used without any network access. This module finds those files first, so that a missing
one is one clear error that says where to put it, not a traceback from the download.
"""

from __future__ import annotations

from pathlib import Path

from glacier.errors import ModelError


def weights_source(encoder: str, weights: str) -> tuple[str, str]:
    """``(repo_id, revision)`` smp downloads ``encoder``'s ``weights`` from."""
    from segmentation_models_pytorch.encoders import encoders

    if encoder not in encoders:
        raise ModelError(
            f"model.encoder_weights={weights}: {encoder!r} is not a segmentation-models-pytorch encoder"
        )
    settings = encoders[encoder]["pretrained_settings"]
    if weights not in settings:
        raise ModelError(
            f"model.encoder_weights={weights}: {encoder} has no such weights; available: {sorted(settings)}"
        )
    return settings[weights]["repo_id"], settings[weights]["revision"]


def cached_snapshot(encoder: str, weights: str) -> Path:
    """The cache folder that holds (or would hold) the weights' ``config.json`` and
    ``model.safetensors`` (where to copy them by hand on an offline machine)."""
    from huggingface_hub import constants

    repo_id, revision = weights_source(encoder, weights)
    return Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "snapshots" / revision


def ensure_encoder_weights(encoder: str, weights: str | None) -> None:
    """Make sure smp will find ``weights`` for ``encoder`` (downloading them when online);
    a ModelError saying where to place them otherwise. timm (``tu-``) encoders are left to timm."""
    if weights is None or encoder.startswith("tu-"):
        return
    from huggingface_hub import hf_hub_download

    repo_id, revision = weights_source(encoder, weights)
    try:
        for filename in ("config.json", "model.safetensors"):
            hf_hub_download(repo_id, filename=filename, revision=revision)
    except Exception as exc:  # offline, unreachable or not cached: huggingface_hub raises several types
        raise ModelError(
            f"model.encoder_weights={weights}: cannot get {repo_id} ({type(exc).__name__}); on a machine "
            f"without network put its config.json and model.safetensors into {cached_snapshot(encoder, weights)} "
            "(set HF_HOME to choose the cache), or set model.encoder_weights=null"
        ) from None
