"""One model factory: any segmentation-models-pytorch architecture, optionally boundary-aware.

    model = build_model(cfg.model, bands=("blue", "green", "red", "swir1", "tir"))
    logits = model(x)                                   # (B, 4, H, W)
    logits, edges = model(x, with_boundary=True)        # edges: (B, 1, H, W) or None

``GlacierModel.net`` is a plain smp model and nothing is added inside it, so its
``state_dict()`` loads with ``strict=True`` into segmentation-models-pytorch 0.3.x built with
the same arguments (the submission environment). The boundary head sits beside it and is
used only in training.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence
from typing import Any

import segmentation_models_pytorch as smp
import torch
from segmentation_models_pytorch.base import SegmentationModel
from torch import nn
from torch.nn import functional as F

from glacier.config import ModelConfig
from glacier.domain import NUM_CLASSES
from glacier.errors import ConfigError

BOUNDARY_AWARE_UNET = "boundary_aware_unet"
"""Config name of smp's ``Unet`` with a boundary head on its decoder output."""


class BoundaryHead(nn.Sequential):
    """A small conv head predicting class-boundary logits from decoder features."""

    def __init__(self, in_channels: int, hidden_channels: int | None = None) -> None:
        hidden = hidden_channels or max(8, in_channels)
        super().__init__(
            nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, kernel_size=1),
        )


class GlacierModel(nn.Module):
    """An smp segmentation model (``.net``) plus an optional boundary head.

    ``arch_config`` holds everything needed to rebuild the model (it is written to a model
    folder's config.json); ``bands`` are the canonical input bands, in input-channel order.
    """

    def __init__(
        self,
        net: nn.Module,
        boundary_head: nn.Module | None,
        bands: Sequence[str],
        arch_config: dict[str, Any],
    ) -> None:
        super().__init__()
        self.net = net
        self.boundary_head = boundary_head
        self.bands = tuple(bands)
        self.arch_config = dict(arch_config)
        self._decoder_takes_varargs = _takes_varargs(net.decoder.forward)

    @property
    def stride(self) -> int:
        """Input height and width must be multiples of this (prediction pads to it)."""
        return 2 ** int(self.arch_config["encoder_depth"])

    @property
    def num_classes(self) -> int:
        return int(self.arch_config["num_classes"])

    def forward(
        self, x: torch.Tensor, with_boundary: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        if not with_boundary:
            return self.net(x)
        if self.boundary_head is None:
            return self.net(x), None
        features = self.net.encoder(x)
        # smp 0.6 decoders take the feature list as one argument, 0.3's take *features.
        decoded = self.net.decoder(*features) if self._decoder_takes_varargs else self.net.decoder(features)
        logits = self.net.segmentation_head(decoded)
        edges = self.boundary_head(decoded)
        if edges.shape[-2:] != logits.shape[-2:]:
            # Decoders that work below full resolution (DeepLabV3+, FPN) upsample in their head.
            edges = F.interpolate(edges, size=logits.shape[-2:], mode="bilinear", align_corners=False)
        return logits, edges


def build_model(model_cfg: ModelConfig, bands: Sequence[str], num_classes: int = NUM_CLASSES) -> GlacierModel:
    """Build the model ``model_cfg`` describes for ``bands`` (one input channel per band).

    ``boundary_aware_unet`` is smp's ``Unet`` with a boundary head; any other name is passed
    to ``smp.create_model``. ``encoder_weights`` None (the default) never downloads anything.
    """
    boundary = model_cfg.architecture.lower() == BOUNDARY_AWARE_UNET
    architecture = "Unet" if boundary else model_cfg.architecture
    arch_config = {
        "architecture": architecture,
        "boundary_head": boundary,
        "encoder": model_cfg.encoder,
        "encoder_depth": model_cfg.encoder_depth,
        "decoder_channels": _resolve_decoder_channels(
            architecture, model_cfg.decoder_channels, model_cfg.encoder_depth
        ),
        "in_channels": len(bands),
        "num_classes": num_classes,
    }
    model = build_from_arch_config(arch_config, bands, encoder_weights=model_cfg.encoder_weights)
    _check_output_matches_input(model)
    return model


def _check_output_matches_input(model: GlacierModel) -> None:
    """Refuse an architecture whose masks would not be the input's size at this encoder depth.

    Some smp decoders upsample by a fixed factor that assumes one depth (FPN by 4 from stride
    4, i.e. depth 5; PSPNet by 8, depth 3); at another they return masks 2-4x too large or
    small, which would fail deep in the loss. A probe of four network strides, in eval mode
    (batch norm on one image), finds it before training starts.
    """
    side = 4 * model.stride
    probe = torch.zeros(1, int(model.arch_config["in_channels"]), side, side)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model.net(probe)
    except (RuntimeError, ValueError):
        return  # a decoder that needs larger inputs than the probe: real tiles will tell
    finally:
        model.train(training)
    if tuple(out.shape[-2:]) != (side, side):
        architecture, depth = model.arch_config["architecture"], model.arch_config["encoder_depth"]
        model_class = _smp_architectures()[architecture.lower()]
        default = inspect.signature(model_class.__init__).parameters["encoder_depth"].default
        raise ConfigError(
            f"model.architecture {architecture} with model.encoder_depth {depth} returns "
            f"{out.shape[-2]}x{out.shape[-1]} px masks for {side}x{side} px tiles: its decoder "
            f"upsamples for encoder_depth {default}; set model.encoder_depth: {default} or use "
            f"another architecture (e.g. {BOUNDARY_AWARE_UNET})"
        )


def smp_init_kwargs(arch_config: dict[str, Any]) -> dict[str, Any]:
    """The smp constructor arguments that rebuild ``arch_config``'s network (weights aside).

    The one place they are built: the factory, the model folder's ``config.json`` and the
    submission package use them. Only arguments that segmentation-models-pytorch 0.3.x
    also takes (the submission environment), so a state dict moves between the versions.
    """
    kwargs: dict[str, Any] = {
        "encoder_name": arch_config["encoder"],
        "encoder_depth": int(arch_config["encoder_depth"]),
        "in_channels": int(arch_config["in_channels"]),
        "classes": int(arch_config["num_classes"]),
    }
    if arch_config.get("decoder_channels") is not None:
        kwargs["decoder_channels"] = arch_config["decoder_channels"]
    return kwargs


def smp_config(model: GlacierModel) -> dict[str, Any]:
    """What ``smp.from_pretrained`` reads from config.json to rebuild ``model.net``.

    smp's hub mixin records every constructor argument (defaults included) as ``net.config``
    and names the class in ``_model_class``; weights are never downloaded on load.
    """
    recorded = dict(getattr(model.net, "config", None) or {})
    return {
        "_model_class": type(model.net).__name__,
        **recorded,
        **smp_init_kwargs(model.arch_config),
        "encoder_weights": None,
    }


def build_from_arch_config(
    arch_config: dict[str, Any], bands: Sequence[str], encoder_weights: str | None = None
) -> GlacierModel:
    """Rebuild a model from its ``arch_config`` (as stored in a model folder's config.json)."""
    if len(bands) != int(arch_config["in_channels"]):
        raise ConfigError(
            f"{len(bands)} bands {list(bands)} for a model with {arch_config['in_channels']} inputs"
        )
    kwargs = smp_init_kwargs(arch_config)
    try:
        net = smp.create_model(arch_config["architecture"], encoder_weights=encoder_weights, **kwargs)
    except KeyError as exc:
        raise ConfigError(_unknown_name(arch_config, exc)) from None
    except (ValueError, TypeError, AssertionError) as exc:
        raise ConfigError(f"cannot build model {arch_config}: {exc}") from None
    head = None
    if arch_config.get("boundary_head"):
        head = BoundaryHead(_decoder_out_channels(net))
    return GlacierModel(net, head, bands, arch_config)


def _unknown_name(arch_config: dict[str, Any], exc: KeyError) -> str:
    """What smp's KeyError was about: the architecture, or (a known architecture) the encoder."""
    architecture = arch_config["architecture"]
    if architecture.lower() not in _smp_architectures():
        return (
            f"model.architecture {architecture!r} is not a segmentation-models-pytorch architecture; "
            f"use {BOUNDARY_AWARE_UNET} or e.g. Unet, UnetPlusPlus, DeepLabV3Plus, FPN"
        )
    names = smp.encoders.get_encoder_names()
    close = difflib.get_close_matches(str(arch_config["encoder"]), names, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return (
        f"model.encoder {arch_config['encoder']!r} is not a segmentation-models-pytorch encoder "
        f"({len(names)} are, e.g. resnet18, resnet34, efficientnet-b0; timm's as tu-NAME); {hint}"
        "see segmentation_models_pytorch.encoders.get_encoder_names()"
    )


def _resolve_decoder_channels(
    architecture: str, channels: list[int] | None, depth: int
) -> list[int] | int | None:
    """The decoder_channels argument the architecture takes, or None where it takes none.

    U-Net-like decoders take one width per stage (``depth`` of them); others (DeepLabV3+,
    PAN, UPerNet) take a single width.
    """
    model_class = _smp_architectures().get(architecture.lower())
    if model_class is None:
        raise ConfigError(
            f"model.architecture {architecture!r} is not a segmentation-models-pytorch architecture; "
            f"use {BOUNDARY_AWARE_UNET} or e.g. Unet, UnetPlusPlus, DeepLabV3Plus, FPN"
        )
    params = inspect.signature(model_class.__init__).parameters
    if "decoder_channels" not in params:
        if channels is not None:
            raise ConfigError(f"model.decoder_channels: {architecture} takes no decoder_channels; remove it")
        return None
    default = params["decoder_channels"].default
    if isinstance(default, int):
        if channels is None:
            return None
        if len(channels) != 1:
            raise ConfigError(f"model.decoder_channels: {architecture} takes one width, got {channels}")
        return int(channels[0])
    if channels is None:
        # Keep the architecture's default widths, one per decoder stage.
        channels = list(default)[:depth]
    if len(channels) != depth:
        raise ConfigError(
            f"model.decoder_channels: {architecture} needs one width per stage "
            f"(encoder_depth={depth}), got {len(channels)}: {channels}"
        )
    return [int(c) for c in channels]


def _smp_architectures() -> dict[str, type]:
    """smp's model classes by lower-case name (what ``smp.create_model`` accepts)."""
    return {
        name.lower(): obj
        for name, obj in vars(smp).items()
        if inspect.isclass(obj) and issubclass(obj, SegmentationModel)
    }


def _decoder_out_channels(net: nn.Module) -> int:
    """Channels the segmentation head reads: the in_channels of its first conv."""
    for module in net.segmentation_head.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ConfigError(f"{type(net).__name__} has no conv in its segmentation head to attach a boundary head")


def _takes_varargs(fn: Any) -> bool:
    return any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in inspect.signature(fn).parameters.values())


def inference_state_dict(model: GlacierModel) -> dict[str, torch.Tensor]:
    """The plain smp network's state dict: what ``model.safetensors`` holds, what the
    submission's smp 0.3.x model loads."""
    return model.net.state_dict()
