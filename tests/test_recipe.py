"""The training recipe's parts (issue 13): bounded sampler, step budget, schedule,
augmentation for an unseen region, ImageNet start offline, head re-initialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from glacier.config import ModelConfig, SchedulerConfig, load_config
from glacier.data.augment import TileAugmentation
from glacier.data.sampler import (
    BalancedTileSampler,
    balance_tile_weights,
    cap_probabilities,
    effective_sample_size,
    expected_shares,
)
from glacier.domain import IGNORE_INDEX
from glacier.errors import ModelError
from glacier.normalization import BandStats, normalize
from glacier.training.builders import DEFAULT_EPOCHS, LrSchedule, resolve_length, steps_per_epoch

BANDS = ("blue", "green", "red", "swir1", "tir")


# ----------------------------------------------------------------------------- sampler
def _realistic_images(n: int = 20, seed: int = 0) -> np.ndarray:
    """Per-image class counts like the competition's: ~70% background, ~25% glacier, ~5%
    debris spread over most images, lake in 2 images only (a few hundred pixels)."""
    rng = np.random.default_rng(seed)
    pixels = 512 * 512
    glacier = rng.uniform(0.1, 0.4, n) * pixels
    debris = rng.uniform(0.0, 0.1, n) * pixels
    lake = np.zeros(n)
    lake[[3, 11]] = [300, 800]
    counts = np.stack([pixels - glacier - debris - lake, glacier, debris, lake], axis=1)
    return counts.astype(np.int64)


def test_unbounded_weights_collapse_and_bounded_ones_do_not():
    counts = _realistic_images()
    old_target = np.array([0.10, 0.35, 0.40, 0.15])
    unbounded = balance_tile_weights(counts, old_target, max_weight=1e9, uniform_mix=0.3)
    # The finding: most draws go to a lake image, a handful of effective images.
    assert unbounded.max() > 0.4 and effective_sample_size(unbounded) < 4
    for max_weight, mix in ((3.0, 0.5), (2.0, 0.0), (5.0, 0.2)):
        p = balance_tile_weights(counts, old_target, max_weight=max_weight, uniform_mix=mix)
        assert p.sum() == pytest.approx(1.0)
        assert p.max() <= max_weight / len(p) + 1e-12
        assert effective_sample_size(p) >= len(p) / max_weight - 1e-9


def test_debris_target_raises_debris_within_the_bounds():
    counts = _realistic_images()
    uniform = expected_shares(counts, np.full(len(counts), 1 / len(counts)))
    p = balance_tile_weights(counts, np.array([0.5, 0.3, 0.2, 0.0]), max_weight=3.0, uniform_mix=0.5)
    shares = expected_shares(counts, p)
    assert shares[2] > 1.2 * uniform[2]  # more debris drawn than uniform draws give
    assert p.max() <= 3.0 / len(p) + 1e-12 and effective_sample_size(p) > 8
    sampler = BalancedTileSampler(counts, [0.5, 0.3, 0.2, 0.0], num_samples=200, seed=0)
    assert sampler.effective_sample_size == pytest.approx(effective_sample_size(sampler.probabilities))
    np.testing.assert_allclose(
        np.bincount(list(sampler), minlength=20) / 200, sampler.probabilities, atol=0.01
    )


def test_cap_projection_and_effective_sample_size():
    p = cap_probabilities(np.array([0.7, 0.2, 0.1, 0.0]), cap=0.4)
    np.testing.assert_allclose(p, [0.4, 0.4, 0.2, 0.0])
    assert effective_sample_size(np.full(8, 1 / 8)) == pytest.approx(8)
    assert effective_sample_size(np.array([1.0, 0, 0])) == pytest.approx(1)
    all_uniform = balance_tile_weights(_realistic_images(), np.array([0.1, 0.3, 0.6, 0.0]), uniform_mix=1.0)
    np.testing.assert_allclose(all_uniform, 1 / 20)


# ------------------------------------------------------------------ length and schedule
def test_step_budget_decides_the_epochs():
    cfg = load_config("small")  # 400 steps, 160 samples per epoch in batches of 8
    assert steps_per_epoch(cfg, train_tiles=12, num_processes=1) == 20
    assert steps_per_epoch(cfg, train_tiles=12, num_processes=2) == 10
    accumulated = load_config("small", ["training.grad_accum_steps=3"])
    assert steps_per_epoch(accumulated, train_tiles=12, num_processes=1) == 7
    whole = load_config("small", ["training.sampler.samples_per_epoch=null"])
    assert steps_per_epoch(whole, train_tiles=12, num_processes=1) == 2  # one pass: 12 tiles
    resolved, line = resolve_length(cfg, 20)
    assert cfg.training.epochs is None and resolved.training.epochs == 20
    assert "400 optimizer steps = 20 epochs x 20 steps" in line
    assert (
        resolve_length(cfg, 21)[0].training.epochs == 20 and resolve_length(cfg, 19)[0].training.epochs == 22
    )
    # --epochs wins over a preset's step budget, and says so.
    explicit, line = resolve_length(load_config("small", epochs=3), 20)
    assert explicit.training.epochs == 3 and "not used" in line
    default, _ = resolve_length(load_config("small", ["training.steps=null"]), 7)
    assert default.training.epochs == DEFAULT_EPOCHS


def test_warmup_then_cosine_per_step_ends_at_min_lr():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    schedule = LrSchedule(optimizer, SchedulerConfig(name="cosine", warmup_steps=4, min_lr=0.01), 3, 8)
    rates = [schedule.lr]
    for _ in range(24):
        schedule.step_batch()
        rates.append(schedule.lr)
    assert rates[:5] == pytest.approx([0.01 + 0.99 * k / 5 for k in range(1, 5)] + [1.0])
    assert all(a >= b for a, b in zip(rates[4:], rates[5:], strict=False))  # falls after warm-up
    assert rates[-1] == pytest.approx(0.01) and rates[14] == pytest.approx(0.505, abs=1e-3)
    state = schedule.state_dict()
    again = LrSchedule(optimizer, SchedulerConfig(name="cosine", warmup_steps=4, min_lr=0.01), 3, 8)
    again.load_state_dict(state)
    assert again.steps == 24 and again.lr == pytest.approx(0.01)


def test_cosine_resumed_with_another_length_falls_from_its_rate_to_the_new_end():
    cfg = SchedulerConfig(name="cosine", warmup_steps=2, min_lr=0.0)
    param = torch.nn.Parameter(torch.zeros(1))
    short = LrSchedule(torch.optim.SGD([param], lr=1.0), cfg, 2, 10)  # 20 steps
    for _ in range(10):
        short.step_batch()
    at_resume = short.lr
    assert 0.4 < at_resume < 0.7
    optimizer = torch.optim.SGD([param], lr=1.0)
    longer = LrSchedule(optimizer, cfg, 4, 10)  # resumed as a 40-step run
    longer.load_state_dict(short.state_dict())
    assert longer.lr == pytest.approx(at_resume)
    rates = []
    for _ in range(30):
        longer.step_batch()
        rates.append(longer.lr)
    assert rates[0] == pytest.approx(at_resume, rel=0.01)  # no jump
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False)) and rates[-1] == pytest.approx(0.0)
    # The same length again resumes the very same schedule.
    same = LrSchedule(torch.optim.SGD([param], lr=1.0), cfg, 2, 10)
    same.load_state_dict(short.state_dict())
    short.step_batch()
    same.step_batch()
    assert same.lr == pytest.approx(short.lr)


def test_plateau_stays_available_after_warmup():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    cfg = SchedulerConfig(name="plateau", warmup_steps=2, patience=0, factor=0.5)
    schedule = LrSchedule(optimizer, cfg, 10, 4)
    schedule.step_batch()
    schedule.step_batch()
    assert schedule.lr == 1.0
    schedule.step_epoch(0.5)
    schedule.step_epoch(0.4)  # no improvement, patience 0: halve
    schedule.step_batch()
    assert schedule.lr == 0.5


# --------------------------------------------------------------------------- augmentation
def _stats() -> BandStats:
    return BandStats(
        BANDS, (18000.0, 18000.0, 18000.0, 14000.0, 282.0), (10000.0, 9900.0, 9300.0, 5100.0, 9.9)
    )


def _tile(size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = np.repeat(np.repeat(rng.integers(0, 4, (size // 8, size // 8)), 8, 0), 8, 1)
    raw = np.stack([10000 + 3000 * classes + rng.normal(0, 100, classes.shape) for _ in range(4)])
    raw = np.concatenate([raw, (280.0 + classes)[None]]).astype(np.float32)
    mask = classes.astype(np.uint8)
    mask[:4] = IGNORE_INDEX
    raw[:, :4] = np.nan
    return raw, mask


def test_augmentation_is_seeded_and_keeps_the_mask_aligned():
    raw, mask = _tile()
    image = normalize(raw, _stats())
    augment = TileAugmentation(_stats())
    geometric = TileAugmentation(_stats(), photometric_p=0, noise_p=0, blur_p=0, dropout_p=0)
    for index in range(12):
        seed = np.random.SeedSequence([5, 0, index])
        out, out_mask = augment(image, mask, seed)
        again, again_mask = augment(image, mask, np.random.SeedSequence([5, 0, index]))
        assert np.array_equal(out, again) and np.array_equal(out_mask, again_mask)
        # Radiometry, noise, blur and dropout never move the mask: it equals the geometric one.
        plain, plain_mask = geometric(image, mask, np.random.SeedSequence([5, 0, index]))
        assert np.array_equal(out_mask, plain_mask)
        # The geometric image still shows the mask (band 4 is 280 + class in kelvin).
        labelled = plain_mask != IGNORE_INDEX
        kelvin = plain[4] * 9.9 + 282.0
        agree = np.abs(kelvin[labelled] - (280.0 + plain_mask[labelled])) < 0.5
        assert agree.mean() > 0.9
        assert (out[:, ~labelled] == 0).all()  # no-data stays exactly the band mean
        assert np.isfinite(out).all() and out.dtype == np.float32
    assert not np.array_equal(augment(image, mask, 1)[0], augment(image, mask, 2)[0])


def test_gain_acts_in_raw_units_on_reflectance_bands_only():
    raw, mask = _tile()
    stats = _stats()
    image = normalize(raw, stats)
    gain_only = TileAugmentation(
        stats, affine_p=0, photometric_p=1, offset=0, band_gain_std=0, band_offset_std=0, shift_std=0,
        noise_p=0, blur_p=0, dropout_p=0,
    )  # fmt: skip
    out, out_mask = gain_only(image, mask, 3)
    labelled = out_mask != IGNORE_INDEX
    back = (
        out * np.asarray(stats.std, np.float32)[:, None, None]
        + np.asarray(stats.mean, np.float32)[:, None, None]
    )
    # Undo the dihedral transform by comparing sorted values: a gain scales every raw value.
    ratios = [
        np.sort(back[b][labelled]) / np.sort(np.nan_to_num(raw[b])[mask != IGNORE_INDEX]) for b in range(5)
    ]
    gains = [float(np.median(r)) for r in ratios]
    assert 0.85 <= gains[0] <= 1.15 and abs(gains[0] - 1) > 1e-3
    assert np.allclose(gains[:4], gains[0], rtol=1e-4)  # one gain for all reflectance bands
    assert gains[4] == pytest.approx(1.0, abs=1e-5)  # kelvin is not scaled


def test_basic_augmentation_is_the_previous_one():
    basic = TileAugmentation.basic()
    assert (basic.gain, basic.noise_p, basic.blur_p, basic.dropout_p, basic.scale) == (
        0.0,
        0.0,
        0.0,
        0.0,
        (0.9, 1.1),
    )


# ------------------------------------------------------------------- initialisation
def _fake_imagenet_cache(cache, encoder: str = "resnet18") -> dict[str, torch.Tensor]:
    """Write a resnet encoder's weights where smp 0.6 looks for them (the HF cache snapshot
    of ``smp-hub/<encoder>.imagenet`` at smp's pinned revision); return them."""
    from segmentation_models_pytorch.encoders import get_encoder

    from glacier.training.pretrained_encoder import cached_snapshot

    torch.manual_seed(123)
    weights = {
        k: v.clone() for k, v in get_encoder(encoder, in_channels=3, weights=None).state_dict().items()
    }
    snapshot = cached_snapshot(encoder, "imagenet")
    assert str(snapshot).startswith(str(cache))
    snapshot.mkdir(parents=True)
    save_file(weights, str(snapshot / "model.safetensors"))
    (snapshot / "config.json").write_text(json.dumps({"encoder": encoder}))
    return weights


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return tmp_path / "hf"


def test_imagenet_start_offline_with_five_bands(hf_cache):
    from glacier.models import build_model
    from glacier.training.pretrained_encoder import ensure_encoder_weights

    with pytest.raises(ModelError, match="cannot get smp-hub/resnet18.imagenet.*model.safetensors into"):
        ensure_encoder_weights("resnet18", "imagenet")
    weights = _fake_imagenet_cache(hf_cache)
    ensure_encoder_weights("resnet18", "imagenet")
    cfg = ModelConfig(architecture="Unet", encoder="resnet18", encoder_weights="imagenet")
    model = build_model(cfg, BANDS)
    encoder = model.net.encoder.state_dict()
    # smp's adaptation: the RGB filters repeated over the 5 bands, scaled by 3 / 5.
    conv = weights["conv1.weight"]
    expected = torch.stack([conv[:, i % 3] for i in range(5)], dim=1) * 3 / 5
    torch.testing.assert_close(encoder["conv1.weight"], expected)
    torch.testing.assert_close(encoder["layer3.1.conv2.weight"], weights["layer3.1.conv2.weight"])
    with pytest.raises(ModelError, match="no such weights"):
        ensure_encoder_weights("resnet18", "instagram")


def test_head_is_reinitialised_after_transfer_encoder_and_decoder_kept(tmp_path):
    from glacier.models import build_model, save_model_folder
    from glacier.training.head_reset import reinit_segmentation_head
    from glacier.training.initial_weights import init_weights

    cfg = ModelConfig(encoder="resnet18", encoder_depth=3, decoder_channels=[32, 16, 8])
    torch.manual_seed(0)
    source = build_model(cfg, BANDS)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.5)  # unlike any fresh initialisation
    save_model_folder(source, tmp_path / "src", normalization=_stats())
    torch.manual_seed(1)
    model = build_model(cfg, BANDS)
    init_weights(model, tmp_path / "src", BANDS)
    reset = reinit_segmentation_head(model)
    assert reset == ["net.segmentation_head.0.weight", "net.segmentation_head.0.bias"]
    src, dst = source.state_dict(), model.state_dict()
    for key in dst:
        same = torch.equal(src[key], dst[key])
        assert same != key.startswith("net.segmentation_head."), key
    assert (dst["net.segmentation_head.0.bias"] == 0).all()
