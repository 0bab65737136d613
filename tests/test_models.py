"""The model factory, model folders and band transfer."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from glacier.config import ModelConfig
from glacier.domain import CLASS_VALUES, COMPETITION_BANDS, HKH_SEVEN_BANDS
from glacier.errors import ConfigError, ModelError
from glacier.models import (
    build_model,
    first_conv_key,
    inference_state_dict,
    is_model_folder,
    load_model_folder,
    save_model_folder,
    transfer_weights,
)
from glacier.normalization import BandStats

TINY = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]}
BANDS = COMPETITION_BANDS


def tiny_model(bands=BANDS, **overrides):
    torch.manual_seed(0)
    return build_model(ModelConfig(**{**TINY, **overrides}), bands)


def stats_for(bands):
    return BandStats(tuple(bands), tuple(float(i) for i in range(len(bands))), (1.0,) * len(bands))


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


def test_net_is_a_plain_smp_model():
    import segmentation_models_pytorch as smp

    model = tiny_model()
    plain = smp.Unet(
        "resnet18",
        encoder_weights=None,
        encoder_depth=3,
        decoder_channels=[32, 16, 8],
        in_channels=5,
        classes=4,
    )
    plain.load_state_dict(inference_state_dict(model), strict=True)


def test_bad_architecture_and_decoder_channels_are_config_errors():
    with pytest.raises(ConfigError, match="NoSuchNet"):
        build_model(ModelConfig(architecture="NoSuchNet"), BANDS)
    with pytest.raises(ConfigError, match="one width per stage"):
        build_model(ModelConfig(encoder="resnet18", encoder_depth=3, decoder_channels=[32, 16]), BANDS)


def test_model_folder_round_trip(tmp_path):
    model = tiny_model().eval()
    folder = save_model_folder(
        model,
        tmp_path / "model",
        normalization=stats_for(BANDS),
        metrics={"mcc": 0.5},
        training={"name": "tiny"},
        sensor_bands=["B2", "B3", "B4", "B6", "B10"],
    )
    assert is_model_folder(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "glacier-model" and config["format_version"] == 1
    assert config["architecture"] == "Unet" and config["boundary_head"] is True
    assert config["class_values"] == list(CLASS_VALUES) and config["bands"] == list(BANDS)
    keys = load_file(str(folder / "model.safetensors")).keys()
    assert all(k.startswith(("net.", "boundary_head.")) for k in keys)
    assert any(k.startswith("boundary_head.") for k in keys)

    loaded, meta = load_model_folder(folder)
    assert meta.bands == tuple(BANDS) and meta.metrics == {"mcc": 0.5}
    assert meta.normalization == stats_for(BANDS)
    assert meta.sensor_bands == ("B2", "B3", "B4", "B6", "B10")
    x = torch.randn(2, 5, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, with_boundary=True), model(x, with_boundary=True))


def test_model_folder_errors_name_the_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model_folder(tmp_path / "nothing")
    folder = save_model_folder(tiny_model(), tmp_path / "m", normalization=stats_for(BANDS))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="model.safetensors"):
        load_model_folder(folder)
    (folder / "config.json").write_text("{not json")
    assert not is_model_folder(folder)
    with pytest.raises(ModelError, match="config.json"):
        load_model_folder(folder)
    with pytest.raises(ModelError, match="normalisation"):
        save_model_folder(tiny_model(), tmp_path / "x", normalization=stats_for(("blue",)))


def test_failed_save_leaves_previous_folder(tmp_path, monkeypatch):
    folder = save_model_folder(
        tiny_model(), tmp_path / "m", normalization=stats_for(BANDS), metrics={"mcc": 0.1}
    )
    import glacier.models.folder as folder_module

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(folder_module, "save_file", broken)
    with pytest.raises(OSError):
        save_model_folder(tiny_model(), folder, normalization=stats_for(BANDS), metrics={"mcc": 0.9})
    assert json.loads((folder / "config.json").read_text())["metrics"] == {"mcc": 0.1}
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


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
