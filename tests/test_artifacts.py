"""Artifacts: model folders (format 2, smp-native; format 1 still read), ensemble folders, open_artifact."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import segmentation_models_pytorch as smp
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file
from test_models import plain_unet

from glacier.artifacts import EnsembleFolder, EnsembleMember, ModelFolder, open_artifact
from glacier.config import ModelConfig
from glacier.domain import CLASS_NAMES, CLASS_VALUES, COMPETITION_BANDS
from glacier.errors import HubError, ModelError
from glacier.models import build_model, load_model_folder, save_model_folder
from glacier.normalization import BandStats
from tests.conftest import REPO_ROOT

BANDS = COMPETITION_BANDS
SENSOR_BANDS = ("B2", "B3", "B4", "B6", "B10")
TINY = ModelConfig(
    architecture="boundary_aware_unet", encoder="resnet18", encoder_depth=3, decoder_channels=[32, 16, 8]
)
STATS = BandStats(BANDS, (0.2, 0.3, 0.25, 0.1, 280.0), (0.05, 0.08, 0.06, 0.03, 10.0))


def tiny_model(seed: int = 0, config: ModelConfig = TINY, bands=BANDS):
    torch.manual_seed(seed)
    model = build_model(config, bands).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics: eval outputs depend on them
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


def save(folder, model=None, **kwargs):
    save_model_folder(
        model if model is not None else tiny_model(),
        folder,
        normalization=STATS,
        sensor_bands=SENSOR_BANDS,
        metrics={"mcc": 0.5},
        training={"name": "tiny", "dataset": "competition"},
        **kwargs,
    )
    return folder


def outputs(model, x):
    with torch.no_grad():
        return model(x, with_boundary=True)


# ---------------------------------------------------------------------- model folder
def test_model_folder_is_smp_native(tmp_path):
    model = tiny_model()
    folder = save(tmp_path / "model", model)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", "boundary_head.safetensors", "config.json", "model.safetensors"]

    config = json.loads((folder / "config.json").read_text())
    assert config["_model_class"] == "Unet" and config["encoder_name"] == "resnet18"
    assert config["encoder_weights"] is None and config["in_channels"] == 5 and config["classes"] == 4
    assert config["decoder_channels"] == [32, 16, 8] and config["encoder_depth"] == 3
    block = config["_glacier"]
    assert block["format"] == "glacier-model" and block["format_version"] == 2
    assert block["bands"] == list(BANDS) and block["sensor_bands"] == list(SENSOR_BANDS)
    assert block["class_names"] == list(CLASS_NAMES) and block["class_values"] == list(CLASS_VALUES)
    assert block["normalization"] == STATS.to_dict() and block["calibration"] is None
    assert block["boundary_head"] is True and block["metrics"] == {"mcc": 0.5}

    plain = plain_unet()
    assert set(load_file(str(folder / "model.safetensors"))) == set(plain.state_dict())
    assert set(load_file(str(folder / "boundary_head.safetensors"))) == set(model.boundary_head.state_dict())

    x = torch.randn(2, 5, 32, 32)
    loaded = smp.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model.net(x))
    glacier_model, meta = load_model_folder(folder)
    for got, expected in zip(outputs(glacier_model, x), outputs(model, x), strict=True):
        assert torch.equal(got, expected)
    assert meta.bands == BANDS and meta.sensor_bands == SENSOR_BANDS and meta.normalization == STATS
    assert meta.format_version == 2 and meta.arch_config == model.arch_config
    card = ModelCard((folder / "README.md").read_text())
    assert card.data.library_name == "segmentation-models-pytorch" and "landsat-8" in card.data.tags


@pytest.mark.parametrize("architecture", ["FPN", "DeepLabV3Plus"])
def test_model_without_boundary_head_has_one_weights_file(tmp_path, architecture):
    model = tiny_model(config=ModelConfig(architecture=architecture, encoder="resnet18"))
    folder = save(tmp_path / architecture, model)
    assert not (folder / "boundary_head.safetensors").exists()
    assert ModelFolder(folder).files().keys() == {"config.json", "model.safetensors"}
    x = torch.randn(1, 5, 64, 64)
    with torch.no_grad():
        assert torch.equal(smp.from_pretrained(str(folder)).eval()(x), model(x))
        assert torch.equal(load_model_folder(folder)[0](x), model(x))


def write_version_1(folder, model) -> None:
    """A model folder as glacier 0.1 wrote it: glacier's keys at the top, one weights file."""
    folder.mkdir(parents=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}  # net.* and boundary_head.*
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "glacier-model"})
    config = {
        "format": "glacier-model",
        "format_version": 1,
        "architecture": "Unet",
        "boundary_head": True,
        "encoder": "resnet18",
        "encoder_depth": 3,
        "decoder_channels": [32, 16, 8],
        "in_channels": 5,
        "bands": list(BANDS),
        "sensor_bands": list(SENSOR_BANDS),
        "classes": list(CLASS_NAMES),
        "class_values": list(CLASS_VALUES),
        "normalization": STATS.to_dict(),
        "metrics": {"mcc": 0.4},
        "training": {"name": "old", "dataset": "competition"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "README.md").write_text("# old card\n")


def test_version_1_folder_loads_and_upgrades(tmp_path):
    model = tiny_model(3)
    old = tmp_path / "v1"
    write_version_1(old, model)
    before = {p.name: p.read_bytes() for p in old.iterdir()}

    folder = open_artifact(old)
    assert isinstance(folder, ModelFolder) and folder.meta.format_version == 1
    assert folder.meta.metrics == {"mcc": 0.4} and folder.meta.arch_config == model.arch_config
    assert folder.files().keys() == {"config.json", "model.safetensors"}
    x = torch.randn(1, 5, 32, 32)
    loaded, _ = folder.load()
    for got, expected in zip(outputs(loaded, x), outputs(model, x), strict=True):
        assert torch.equal(got, expected)
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before  # read, never rewritten

    new = folder.upgrade_to(tmp_path / "v2")
    assert json.loads((new.path / "config.json").read_text())["_glacier"]["format_version"] == 2
    assert new.meta.metrics == {"mcc": 0.4} and new.meta.training["name"] == "old"
    with torch.no_grad():
        assert torch.equal(smp.from_pretrained(str(new.path)).eval()(x), model.net(x))
    for got, expected in zip(outputs(new.load()[0], x), outputs(model, x), strict=True):
        assert torch.equal(got, expected)


def test_model_folder_errors_name_the_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model_folder(tmp_path / "nothing")
    folder = save(tmp_path / "m")
    (folder / "boundary_head.safetensors").unlink()
    with pytest.raises(
        ModelError, match=r"boundary_head.safetensors: missing; the model folder is incomplete"
    ):
        ModelFolder(folder).verify()

    folder = save(tmp_path / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"model.safetensors: cannot read the weights"):
        load_model_folder(folder)

    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["_glacier"]["format_version"] = 9
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelError, match="format_version 9 is newer"):
        ModelFolder(folder).verify()
    config["_glacier"]["format_version"] = 2
    config["in_channels"] = 4
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelError, match="disagree"):
        ModelFolder(folder).verify()
    config_path.write_text("{not json")
    assert not ModelFolder.found_at(folder)
    with pytest.raises(ModelError, match="config.json: not valid JSON"):
        load_model_folder(folder)
    with pytest.raises(ModelError, match="normalisation"):
        save_model_folder(tiny_model(), tmp_path / "x", normalization=STATS.select(("blue",)))


def test_a_plain_smp_folder_is_not_a_glacier_model(tmp_path):
    plain_unet().save_pretrained(tmp_path / "plain")
    assert not ModelFolder.found_at(tmp_path / "plain")
    with pytest.raises(ModelError, match="not a glacier model config"):
        ModelFolder(tmp_path / "plain").verify()


def test_failed_save_leaves_previous_folder(tmp_path, monkeypatch):
    folder = save(tmp_path / "m")
    import safetensors.torch

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError):
        save_model_folder(tiny_model(), folder, normalization=STATS, metrics={"mcc": 0.9})
    assert ModelFolder(folder).meta.metrics == {"mcc": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


# ------------------------------------------------------------------- ensemble folder
def test_ensemble_folder_round_trip_and_checks(tmp_path):
    members = [
        EnsembleMember(
            f"seed{s}", save(tmp_path / f"src{s}", tiny_model(s)), seed=s, fold=0, metrics={"mcc": m}
        )
        for s, m in ((1, 0.6), (2, 0.64))
    ]
    ensemble = EnsembleFolder.write(tmp_path / "ens", members)
    assert EnsembleFolder.found_at(ensemble.path)
    manifest = json.loads((ensemble.path / "ensemble.json").read_text())
    assert [m["path"] for m in manifest["members"]] == ["members/seed1", "members/seed2"]
    assert manifest["metrics"]["member_mcc_mean"] == pytest.approx(0.62)
    assert list(EnsembleFolder(ensemble.path).members()) == ["seed1", "seed2"]
    card = (ensemble.path / "README.md").read_text()
    assert "ensemble of 2 models" in card and "| `seed2` | 2 | 0 | 0.6400 |" in card
    assert ModelCard(card).data.eval_results[0].metric_type == "matthews_correlation"
    x = torch.randn(1, 5, 32, 32)
    member, _ = EnsembleFolder(ensemble.path).members()["seed2"].load()
    with torch.no_grad():
        assert torch.equal(member(x), tiny_model(2)(x))

    with pytest.raises(ModelError, match="unique folder names"):
        EnsembleFolder.write(tmp_path / "bad", [members[0], members[0]])
    other = save_model_folder(
        tiny_model(bands=("blue", "green")), tmp_path / "two", normalization=STATS.select(("blue", "green"))
    )
    with pytest.raises(ModelError, match="disagree on bands"):
        EnsembleFolder.write(tmp_path / "bad", [members[0], EnsembleMember("two", other)])
    manifest["members"][0]["path"] = "../src1"
    (ensemble.path / "ensemble.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="must be a sub-folder"):
        EnsembleFolder(ensemble.path).verify()


# --------------------------------------------------------------------- open_artifact
def test_open_artifact_decides_what_a_path_is(tmp_path):
    model = save(tmp_path / "run" / "best")
    assert isinstance(open_artifact(model), ModelFolder)
    run = open_artifact(tmp_path / "run")
    assert isinstance(run, ModelFolder) and run.path == model and run.run_dir == tmp_path / "run"
    ensemble = EnsembleFolder.write(tmp_path / "ens", [EnsembleMember("a", model)])
    assert isinstance(open_artifact(ensemble.path), EnsembleFolder)

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    with pytest.raises(ModelError, match=r"not a model folder .* or a run folder \(best/\) \(files: a.txt\)"):
        open_artifact(tmp_path / "notes")
    with pytest.raises(HubError, match="no such local folder, and it is not a Hub repo id"):
        open_artifact("./runs/missing/best")
    with pytest.raises(HubError, match="no such local folder"):
        open_artifact("alice/glacier", hub=False)


def test_reading_metadata_imports_no_torch(tmp_path):
    model = save(tmp_path / "run" / "best")
    ensemble = EnsembleFolder.write(tmp_path / "ens", [EnsembleMember("a", model)])
    code = f"""
import sys
from glacier.artifacts import open_artifact
model = open_artifact({str(model)!r})
run = open_artifact({str(tmp_path / "run")!r})
ensemble = open_artifact({str(ensemble.path)!r})
assert model.meta.bands == run.meta.bands
assert [m.meta.metrics for m in ensemble.members().values()] == [{{"mcc": 0.5}}]
assert "torch" not in sys.modules, "reading metadata imported torch"
print("ok", model.meta.arch_config["architecture"])
"""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok Unet"
