"""Prediction: tiling and blending, batched TTA, ensembles, soups, and `glacier predict`."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin

from glacier.artifacts import EnsembleFolder, EnsembleMember
from glacier.config import ModelConfig
from glacier.data.raster import write_raster
from glacier.domain import CLASS_VALUES, COMPETITION_BAND_FOLDERS, COMPETITION_BANDS, HKH_SEVEN_BANDS
from glacier.errors import DataError, ModelError
from glacier.models import build_model, save_model_folder
from glacier.normalization import BandStats
from glacier.predict import Predictor, soup_models, tta_probabilities
from glacier.predict.tiling import blend_weights, pad_to_multiple, tile_starts

TINY = ModelConfig(architecture="Unet", encoder="resnet18", encoder_depth=3, decoder_channels=[32, 16, 8])
CRS_UTM45N = CRS.from_epsg(32645)
STATS = BandStats(COMPETITION_BANDS, (0.2, 0.3, 0.25, 0.1, 280.0), (0.05, 0.08, 0.06, 0.03, 10.0))


def tiny_model(seed: int = 0, bands=COMPETITION_BANDS, config: ModelConfig = TINY):
    torch.manual_seed(seed)
    model = build_model(config, bands).eval()
    # Non-trivial BatchNorm statistics, so eval-mode outputs depend on them.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


def smooth_image(height: int, width: int, seed: int = 0, stats: BandStats = STATS) -> np.ndarray:
    """A raw (C, H, W) image with spatial structure, scaled like ``stats``."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((len(stats.bands), height // 8 + 2, width // 8 + 2))
    coarse = torch.nn.functional.interpolate(
        torch.from_numpy(noise)[None], size=(height, width), mode="bilinear", align_corners=False
    )[0].numpy()
    mean = np.asarray(stats.mean)[:, None, None]
    std = np.asarray(stats.std)[:, None, None]
    return (mean + 2.0 * std * coarse).astype(np.float32)


def meta_for(stats: BandStats = STATS):
    return SimpleNamespace(normalization=stats)


def write_scenes(root: Path, shapes: dict[str, tuple[int, int]], folders=COMPETITION_BAND_FOLDERS) -> Path:
    """Competition-layout band folders of georeferenced float32 GeoTIFFs."""
    for index, (name, (height, width)) in enumerate(shapes.items()):
        image = smooth_image(height, width, seed=index)
        profile = {"crs": CRS_UTM45N, "transform": from_origin(300000 + 1000 * index, 3100000, 30, 30)}
        for band, folder in enumerate(folders):
            write_raster(root / folder / name, image[band], profile)
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_model_folder(
        tiny_model(0), folder, normalization=STATS, sensor_bands=("B2", "B3", "B4", "B6", "B10")
    )
    return folder


@pytest.fixture(scope="module")
def ensemble_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("ensemble")
    members = []
    for seed in (1, 2):
        folder = base / f"src{seed}"
        save_model_folder(tiny_model(seed), folder, normalization=STATS)
        members.append(EnsembleMember(name=f"seed{seed}_fold0", model_dir=folder, seed=seed, fold=0))
    return EnsembleFolder.write(base / "ensemble", members).path


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory) -> Path:
    return write_scenes(tmp_path_factory.mktemp("scenes"), {"img001.tif": (64, 64), "img002.tif": (70, 90)})


# --------------------------------------------------------------------------- tiling
def test_tile_starts_cover_with_overlap():
    starts = tile_starts(300, 64, 0.25)
    assert starts[0] == 0 and starts[-1] == 300 - 64
    gaps = np.diff(starts)
    assert (gaps <= 48).all() and (gaps > 0).all()  # at least 25% overlap, no repeats
    assert tile_starts(50, 64, 0.5) == [0]


def test_blend_weights_are_positive_and_peak_in_the_middle():
    weights = blend_weights(32, 48)
    assert weights.shape == (32, 48) and weights.min() > 0
    assert weights[16, 24] > 0.99 and weights[0, 0] < 0.01


@pytest.mark.parametrize("shape", [(70, 90), (5, 3), (1, 7)])
def test_pad_to_multiple_reflects_and_keeps_the_original(shape):
    image = np.arange(np.prod(shape), dtype=np.float32).reshape(1, *shape)
    padded = pad_to_multiple(image, 8)
    assert padded.shape[1] % 8 == 0 and padded.shape[2] % 8 == 0
    np.testing.assert_array_equal(padded[:, : shape[0], : shape[1]], image)
    if shape[1] > 1:
        assert padded[0, 0, shape[1]] == image[0, 0, shape[1] - 2]  # reflected, not repeated


def test_tiled_prediction_matches_whole_scene_and_hides_seams():
    model = tiny_model(3)
    image = smooth_image(128, 160, seed=5)
    whole = Predictor([(model, meta_for())], device="cpu", tile_size=None).predict_probabilities(image)
    blended = Predictor([(model, meta_for())], device="cpu", tile_size=64, overlap=0.5).predict_probabilities(
        image
    )
    hard = Predictor([(model, meta_for())], device="cpu", tile_size=64, overlap=0.0).predict_probabilities(
        image
    )
    assert blended.shape == whole.shape == (4, 128, 160)
    interior = (slice(None), slice(16, -16), slice(16, -16))
    blended_error = np.abs(blended - whole)[interior].mean()
    assert blended_error < 0.03
    assert (blended.argmax(0) == whole.argmax(0)).mean() > 0.9
    # Hard seams (tiles side by side, no overlap) are worse than blended overlapping windows.
    assert blended_error < np.abs(hard - whole)[interior].mean()
    # At the seam of the hard tiling (column 64) the blended map has no jump beyond its usual gradient.
    jump = np.abs(np.diff(blended, axis=2))
    assert jump[:, :, 63].mean() < 2 * jump.mean()


def test_non_divisible_sizes_give_the_input_size():
    model = tiny_model(0)
    predictor = Predictor([(model, meta_for())], device="cpu", tile_size=64, overlap=0.25)
    for height, width in [(70, 90), (13, 200), (9, 9)]:
        mask = predictor.predict_mask(smooth_image(height, width))
        assert mask.shape == (height, width) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= set(CLASS_VALUES)


def test_normalisation_comes_from_the_model_not_the_input():
    model = tiny_model(0)
    image = smooth_image(64, 64)
    raw = Predictor([(model, meta_for())], device="cpu").predict_probabilities(image)
    unit = BandStats(COMPETITION_BANDS, (0.0,) * 5, (1.0,) * 5)
    standardised = (image - np.asarray(STATS.mean, np.float32)[:, None, None]) / np.asarray(
        STATS.std, np.float32
    )[:, None, None]
    pre = Predictor([(model, meta_for(unit))], device="cpu").predict_probabilities(standardised)
    np.testing.assert_allclose(raw, pre, atol=1e-5)
    # The same image at another scale is a different input, not re-standardised.
    scaled = Predictor([(model, meta_for())], device="cpu").predict_probabilities(image * 3)
    assert np.abs(scaled - raw).max() > 1e-2


# ------------------------------------------------------------------------------ TTA
class CountingModel(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.model(x)


@torch.inference_mode()
def test_flip_tta_is_one_forward_and_equals_the_manual_average():
    model = CountingModel(tiny_model(0))
    x = torch.randn(2, 5, 32, 48)
    got = tta_probabilities(model, x, "flip")
    assert model.calls == 1
    h = lambda t: torch.flip(t, dims=(-1,))  # noqa: E731
    v = lambda t: torch.flip(t, dims=(-2,))  # noqa: E731
    expected = torch.stack(
        [torch.softmax(model.model(x), 1)] + [f(torch.softmax(model.model(f(x)), 1)) for f in (h, v)]
    ).mean(0)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_d4_tta_on_a_non_square_batch_equals_the_manual_average():
    model = CountingModel(tiny_model(0))
    x = torch.randn(1, 5, 32, 48)
    got = tta_probabilities(model, x, "d4")
    assert model.calls == 2  # upright and quarter-turned copies have different shapes
    expected = []
    for k in range(4):
        for flip in (False, True):
            y = torch.rot90(x, k, dims=(-2, -1))
            y = torch.flip(y, dims=(-1,)) if flip else y
            p = torch.softmax(model.model(y), 1)
            p = torch.flip(p, dims=(-1,)) if flip else p
            expected.append(torch.rot90(p, -k, dims=(-2, -1)))
    torch.testing.assert_close(got, torch.stack(expected).mean(0), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ ensembles, soups
def test_ensemble_is_the_average_of_member_probabilities():
    a, b = tiny_model(1), tiny_model(2)
    image = smooth_image(40, 56)
    pa = Predictor([(a, meta_for())], device="cpu", tta="flip").predict_probabilities(image)
    pb = Predictor([(b, meta_for())], device="cpu", tta="flip").predict_probabilities(image)
    both = Predictor([(a, meta_for()), (b, meta_for())], device="cpu", tta="flip").predict_probabilities(
        image
    )
    np.testing.assert_allclose(both, (pa + pb) / 2, atol=1e-6)


def test_soup_of_identical_models_is_the_model_and_soup_averages_weights():
    a = tiny_model(1)
    image = smooth_image(32, 32)
    soup = soup_models([a, tiny_model(1)])
    np.testing.assert_allclose(
        Predictor([(soup, meta_for())], device="cpu").predict_probabilities(image),
        Predictor([(a, meta_for())], device="cpu").predict_probabilities(image),
        atol=1e-6,
    )
    b = tiny_model(2)
    mixed = soup_models([(a, None), (b, None)])
    key = "net.encoder.conv1.weight"
    torch.testing.assert_close(mixed.state_dict()[key], (a.state_dict()[key] + b.state_dict()[key]) / 2)


def test_soup_refuses_different_architectures():
    other = tiny_model(0, config=TINY.model_copy(update={"decoder_channels": [16, 16, 8]}))
    with pytest.raises(ModelError, match="architecture"):
        soup_models([tiny_model(0), other])


# ------------------------------------------------------------------------------ CLI
def test_predict_cli_writes_georeferenced_masks(cli, model_dir, scenes_dir, tmp_path):
    out = tmp_path / "pred"
    assert (
        cli(
            "predict",
            model_dir,
            scenes_dir,
            "--out",
            out,
            "--tta",
            "flip",
            "--tile-size",
            "32",
            "--probabilities",
            "--overlays",
        )
        == 0
    )
    for name, shape in [("img001.tif", (64, 64)), ("img002.tif", (70, 90))]:
        with rasterio.open(out / name) as dst, rasterio.open(scenes_dir / "Band1" / name) as src:
            mask = dst.read(1)
            assert dst.dtypes[0] == "uint8" and mask.shape == shape
            assert set(np.unique(mask)) <= set(CLASS_VALUES)
            assert dst.crs == src.crs and dst.transform == src.transform
        with rasterio.open(out / "probabilities" / name) as probs:
            assert probs.count == 4 and probs.dtypes[0] == "uint8"
            total = probs.read().astype(int).sum(axis=0)
            assert np.abs(total - 255).max() <= 3  # probabilities sum to 1 (rounded x 255)
        overlay = plt.imread(out / "overlays" / name.replace(".tif", ".png"))
        assert overlay.shape[:2] == shape


def test_predict_matches_the_library_predictor(model_dir, scenes_dir, tmp_path):
    from glacier.data.competition import find_scenes, read_scene_image
    from glacier.predict import load_models, predict_folder

    summary = predict_folder(model_dir, scenes_dir, tmp_path, tta="none", device="cpu", progress=False)
    assert summary["scenes"] == 2 and summary["members"] == 1
    predictor = Predictor(load_models(model_dir), device="cpu")
    scene = find_scenes(scenes_dir, require_labels=False)[1]
    with rasterio.open(tmp_path / "img002.tif") as dst:
        np.testing.assert_array_equal(dst.read(1), predictor.predict_mask(read_scene_image(scene)[0]))


def test_predict_ensemble_soup_and_members(cli, ensemble_dir, scenes_dir, tmp_path):
    from glacier.predict import predict_folder

    full = predict_folder(ensemble_dir, scenes_dir, tmp_path / "ens", device="cpu", progress=False)
    assert full["members"] == 2 and not full["soup"]
    soup = predict_folder(
        ensemble_dir, scenes_dir, tmp_path / "soup", device="cpu", soup=True, progress=False
    )
    assert soup["soup"]
    assert (
        cli("predict", ensemble_dir, scenes_dir, "--out", tmp_path / "one", "--members", "seed2_fold0") == 0
    )
    assert cli("predict", ensemble_dir, scenes_dir, "--out", tmp_path / "bad", "--members", "nope") == 1


def test_predict_cli_rejects_bad_inputs(cli, model_dir, scenes_dir, tmp_path, capsys):
    # A band folder missing.
    partial = write_scenes(
        tmp_path / "partial", {"img001.tif": (32, 32)}, folders=COMPETITION_BAND_FOLDERS[:4]
    )
    assert cli("predict", model_dir, partial, "--out", tmp_path / "o1") == 1
    assert "Band5" in capsys.readouterr().err
    # Bands of one scene with different sizes.
    mixed = write_scenes(tmp_path / "mixed", {"img001.tif": (32, 32)})
    write_raster(mixed / "Band3" / "img001.tif", np.zeros((16, 32), np.float32), {"crs": CRS_UTM45N})
    assert cli("predict", model_dir, mixed, "--out", tmp_path / "o2") == 1
    assert "same size" in capsys.readouterr().err
    # A 7-band HKH model cannot read the 5 competition band folders.
    seven = tmp_path / "seven"
    stats7 = BandStats(HKH_SEVEN_BANDS, (0.0,) * 7, (1.0,) * 7)
    save_model_folder(tiny_model(0, bands=HKH_SEVEN_BANDS), seven, normalization=stats7)
    assert cli("predict", seven, scenes_dir, "--out", tmp_path / "o3") == 1
    assert "nir" in capsys.readouterr().err
    # Not a model at all, an unknown TTA, CUDA on a machine without it.
    assert cli("predict", scenes_dir, scenes_dir, "--out", tmp_path / "o4") == 1
    assert cli("predict", model_dir, scenes_dir, "--out", tmp_path / "o5", "--tta", "spin") == 1
    if not torch.cuda.is_available():
        assert cli("predict", model_dir, scenes_dir, "--out", tmp_path / "o6", "--device", "cuda") == 1


def test_predictor_rejects_images_with_the_wrong_band_count():
    predictor = Predictor([(tiny_model(0), meta_for())], device="cpu")
    with pytest.raises(DataError, match="5 bands"):
        predictor.predict_mask(np.zeros((4, 32, 32), np.float32))


# ------------------------------------------------------- plain smp, as the card says
def card_python(card: str) -> str:
    """The first Python code block of a model card: the plain-smp usage."""
    return card.split("```python\n", 1)[1].split("```", 1)[0]


def read_bands(scenes: Path, name: str) -> np.ndarray:
    """A scene's (C, H, W) float32 image, the competition band folders in order."""
    layers = []
    for folder in COMPETITION_BAND_FOLDERS:
        with rasterio.open(scenes / folder / name) as src:
            layers.append(src.read(1).astype(np.float32))
    return np.stack(layers)


def smp_mask_from_card(card: str, source: str, image: np.ndarray) -> np.ndarray:
    """Run the card's plain-smp code on ``image``, the model at ``source``."""
    code = card_python(card).replace("MODEL_DIR", source).replace("ENSEMBLE_DIR", source)
    namespace = {"image": image}
    exec(compile(code, "<model card>", "exec"), namespace)
    return namespace["mask"]


def test_plain_smp_code_of_the_card_predicts_what_glacier_predicts(
    cli, model_dir, ensemble_dir, scenes_dir, tmp_path
):
    image = read_bands(scenes_dir, "img001.tif")  # 64 x 64: a multiple of the stride
    for source in (model_dir, ensemble_dir):
        out = tmp_path / source.name
        assert cli("predict", source, scenes_dir, "--out", out, "--tta", "none", "--device", "cpu") == 0
        with rasterio.open(out / "img001.tif") as src:
            expected = src.read(1)
        card = (source / "README.md").read_text()
        mask = smp_mask_from_card(card, str(source), image)
        assert mask.dtype == np.uint8 and mask.shape == expected.shape
        np.testing.assert_array_equal(mask, expected)
        assert len(np.unique(expected)) > 1  # a real comparison, not two blank masks
