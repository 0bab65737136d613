"""The model factory and band transfer (model folders: test_artifacts.py)."""

from __future__ import annotations

import pytest
import torch

from glacier.config import ModelConfig
from glacier.domain import COMPETITION_BANDS, HKH_SEVEN_BANDS
from glacier.errors import ConfigError
from glacier.models import (
    build_model,
    first_conv_key,
    inference_state_dict,
    smp_init_kwargs,
    transfer_weights,
)

TINY = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]}
BANDS = COMPETITION_BANDS


def tiny_model(bands=BANDS, **overrides):
    torch.manual_seed(0)
    return build_model(ModelConfig(**{**TINY, **overrides}), bands)


def test_boundary_aware_unet_outputs_and_stride():
    model = tiny_model().eval()
    x = torch.randn(2, len(BANDS), 64, 64)
    logits, edges = model(x, with_boundary=True)
    assert logits.shape == (2, 4, 64, 64)
    assert edges.shape == (2, 1, 64, 64)
    # The boundary path runs the same encoder/decoder/head: identical logits.
    torch.testing.assert_close(model(x), logits)
    assert model.stride == 8
    assert model.arch_config == {
        "architecture": "Unet",
        "boundary_head": True,
        "encoder": "resnet18",
        "encoder_depth": 3,
        "decoder_channels": [32, 16, 8],
        "in_channels": 5,
        "num_classes": 4,
    }
    # Gradient reaches the boundary head through a loss on its output.
    edges.sum().backward()
    assert all(p.grad is not None for p in model.boundary_head.parameters())


@pytest.mark.parametrize("arch", ["Unet", "UnetPlusPlus", "DeepLabV3Plus", "FPN"])
def test_any_smp_architecture_without_boundary_head(arch):
    model = build_model(ModelConfig(architecture=arch, encoder="resnet18"), ("blue", "swir1")).eval()
    assert model.boundary_head is None
    x = torch.randn(1, 2, 64, 64)
    logits, edges = model(x, with_boundary=True)
    assert logits.shape == (1, 4, 64, 64) and edges is None
    assert model.stride == 32


def plain_unet():
    """smp's own U-Net with TINY's arguments, built without glacier."""
    import segmentation_models_pytorch as smp

    return smp.Unet(
        "resnet18",
        encoder_weights=None,
        encoder_depth=3,
        decoder_channels=[32, 16, 8],
        in_channels=5,
        classes=4,
    )


def test_net_is_a_plain_smp_model():
    model = tiny_model()
    plain = plain_unet()
    plain.load_state_dict(inference_state_dict(model), strict=True)
    # The one place smp's constructor arguments are built says the same.
    assert smp_init_kwargs(model.arch_config) == {
        "encoder_name": "resnet18",
        "encoder_depth": 3,
        "in_channels": 5,
        "classes": 4,
        "decoder_channels": [32, 16, 8],
    }


def test_bad_architecture_and_decoder_channels_are_config_errors():
    with pytest.raises(ConfigError, match="NoSuchNet"):
        build_model(ModelConfig(architecture="NoSuchNet"), BANDS)
    with pytest.raises(ConfigError, match="one width per stage"):
        build_model(ModelConfig(encoder="resnet18", encoder_depth=3, decoder_channels=[32, 16]), BANDS)


@pytest.mark.parametrize(("arch", "depth", "default"), [("FPN", 3, 5), ("PSPNet", 5, 3)])
def test_an_architecture_whose_masks_miss_the_input_size_at_this_depth_is_refused(arch, depth, default):
    # smp's FPN upsamples by 4 and PSPNet by 8 whatever the depth: masks 4x too large / 4x too small.
    with pytest.raises(
        ConfigError, match=f"{arch} with model.encoder_depth {depth} returns .*encoder_depth: {default}"
    ):
        build_model(ModelConfig(architecture=arch, encoder="resnet18", encoder_depth=depth), BANDS)
    model = build_model(ModelConfig(architecture=arch, encoder="resnet18", encoder_depth=default), BANDS)
    assert model.training  # the probe ran in eval mode and left the model as it was built
    assert model.eval()(torch.zeros(1, len(BANDS), 64, 64)).shape[-2:] == (64, 64)


def test_transfer_seven_bands_into_five():
    src = tiny_model(HKH_SEVEN_BANDS)
    torch.manual_seed(1)
    dst = build_model(ModelConfig(**TINY), BANDS)
    key = first_conv_key(dst)
    assert key == "net.encoder.conv1.weight"
    report = transfer_weights(src.state_dict(), HKH_SEVEN_BANDS, dst, BANDS)
    assert report["matched_bands"] == list(BANDS)
    assert report["unmatched_bands"] == [] and report["dropped_bands"] == ["nir", "swir2"]
    src_w, dst_w = src.state_dict()[key], dst.state_dict()[key]
    for i, band in enumerate(BANDS):
        torch.testing.assert_close(dst_w[:, i], src_w[:, HKH_SEVEN_BANDS.index(band)])
    # Everything else came over unchanged.
    for name, value in src.state_dict().items():
        if name != key:
            torch.testing.assert_close(dst.state_dict()[name], value)
    assert report["skipped"] == {} and report["missing"] == []


def test_transfer_same_bands_gives_identical_outputs():
    src = tiny_model().eval()
    torch.manual_seed(3)
    dst = build_model(ModelConfig(**TINY), BANDS).eval()
    transfer_weights(inference_state_dict(src), BANDS, dst, BANDS)  # a plain smp state dict
    x = torch.randn(1, 5, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x))


def test_transfer_unmatched_band_gets_mean_filter_and_reorders():
    src_bands = ("blue", "green", "red")
    dst_bands = ("red", "elevation", "blue")
    src = tiny_model(src_bands)
    dst = tiny_model(dst_bands)
    report = transfer_weights(src.state_dict(), src_bands, dst, dst_bands)
    assert report["matched_bands"] == ["red", "blue"] and report["unmatched_bands"] == ["elevation"]
    key = report["first_conv"]
    src_w, dst_w = src.state_dict()[key], dst.state_dict()[key]
    torch.testing.assert_close(dst_w[:, 0], src_w[:, 2])
    torch.testing.assert_close(dst_w[:, 1], src_w.mean(dim=1))
    torch.testing.assert_close(dst_w[:, 2], src_w[:, 0])


def test_transfer_reports_skipped_shapes():
    src = build_model(ModelConfig(**TINY), BANDS, num_classes=2)
    dst = tiny_model()
    report = transfer_weights(src.state_dict(), BANDS, dst, BANDS)
    assert any("segmentation_head" in k for k in report["skipped"])
    assert set(report["missing"]) == set(report["skipped"])
