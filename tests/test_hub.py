"""Push and pull through a real HTTP server speaking the Hub API (tests/hub_server.py).

The real huggingface_hub client talks to it: huggingface_hub reads its settings from the
environment at import, so the fixture patches ``huggingface_hub.constants`` for in-process
calls and sets the same variables for subprocesses (the token-leak test runs the CLI in one).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from glacier.errors import HubError
from tests.conftest import REPO_ROOT
from tests.hub_server import FakeHub

TOKEN = "hf_glacierTESTtoken0123456789abcdef"
BOB_TOKEN = "hf_bobTESTtoken0123456789abcdef"
BANDS = ("blue", "green", "red", "swir1", "tir")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    from huggingface_hub import constants

    server = FakeHub(tokens={TOKEN: "alice", BOB_TOKEN: "bob"}).start()
    home = tmp_path / "hf"
    settings = {
        "HF_ENDPOINT": server.url,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    patches = {
        "ENDPOINT": server.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": server.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
    }
    for key, value in patches.items():
        monkeypatch.setattr(constants, key, value)
    server.env = settings
    yield server
    server.stop()
    assert not server.unknown, f"the client called routes the fake Hub does not know: {server.unknown}"


def _use_cache(monkeypatch, cache: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))


def validate_on_the_hub(card) -> None:
    """What ``ModelCard.validate()`` asks the Hub (the check of a card's front matter),
    asked of the endpoint, here the fake Hub: before huggingface_hub 2.2 (the 1.22 bound
    among them) ``validate()`` posts to huggingface.co whatever the endpoint."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session, hf_raise_for_status

    body = {"repoType": card.repo_type, "content": str(card)}
    response = get_session().post(f"{constants.ENDPOINT}/api/validate-yaml", json=body)
    hf_raise_for_status(response)


def _tiny_model(seed: int = 0):
    import torch

    from glacier.config import ModelConfig
    from glacier.models import build_model

    torch.manual_seed(seed)
    cfg = ModelConfig(
        architecture="boundary_aware_unet", encoder="resnet18", encoder_depth=3, decoder_channels=[32, 16, 8]
    )
    return build_model(cfg, BANDS).eval()


def _save_model(folder: Path, seed: int = 0, mcc: float = 0.61):
    from glacier.models import save_model_folder
    from glacier.normalization import BandStats

    model = _tiny_model(seed)
    stats = BandStats(BANDS, (0.1, 0.2, 0.3, 0.4, 280.0), (0.05, 0.05, 0.06, 0.07, 9.0))
    metrics = {"mcc": mcc, "iou": {"background": 0.9, "glacier": 0.7, "debris": 0.3, "lake": 0.0}}
    training = {"name": "tiny", "dataset": "competition", "training": {"epochs": 2, "seed": seed}}
    save_model_folder(
        model,
        folder,
        normalization=stats,
        metrics=metrics,
        training=training,
        sensor_bands=("B2", "B3", "B4", "B6", "B10"),
    )
    return model


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _commits(hub: FakeHub, repo_id: str) -> int:
    return len(hub.repos[repo_id].commits) - 1  # minus the repo's initial commit


# ------------------------------------------------------------------------ round trip
def test_push_pull_round_trip_into_empty_cache(hub, tmp_path, monkeypatch, cli, capsys):
    import torch

    from glacier.artifacts import ModelFolder
    from glacier.models import load_model_folder

    local = tmp_path / "model"
    model = _save_model(local)
    before = _digest(local)

    assert cli("push", local, "alice/glacier-tiny") == 0
    assert "pushed: " in capsys.readouterr().out
    stored = hub.files("alice/glacier-tiny")
    weights = ("model.safetensors", "boundary_head.safetensors")
    assert set(stored) == {".gitattributes", "README.md", "config.json", *weights}
    assert hub.repos["alice/glacier-tiny"].private
    assert _commits(hub, "alice/glacier-tiny") == 1
    assert hub.count("PUT", r"^/lfs-upload/") == 2  # the weights went through LFS
    assert _digest(local) == before  # pushing only reads

    _use_cache(monkeypatch, tmp_path / "empty-cache")
    out = tmp_path / "pulled"
    assert cli("pull", "alice/glacier-tiny", "--out", out) == 0
    for name in ("config.json", *weights):
        assert (out / name).read_bytes() == (local / name).read_bytes()
    assert (out / "README.md").read_text() == ModelFolder(local).card(repo_id="alice/glacier-tiny")
    assert (tmp_path / "empty-cache").is_dir()

    pulled, meta = load_model_folder(out)
    assert meta.bands == BANDS
    x = torch.randn(2, len(BANDS), 64, 64)
    with torch.no_grad():
        assert torch.equal(pulled(x), model(x))


def test_pull_works_offline_from_the_cache(hub, tmp_path, monkeypatch, cli):
    from huggingface_hub import constants

    from glacier.artifacts import open_artifact

    _save_model(tmp_path / "model")
    assert cli("push", tmp_path / "model", "alice/offline") == 0
    assert cli("pull", "alice/offline", "--out", tmp_path / "first") == 0
    hub.stop()

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert cli("pull", "alice/offline", "--out", tmp_path / "second") == 0
    assert _digest(tmp_path / "second") == _digest(tmp_path / "first")
    snapshot = open_artifact("alice/offline").path
    assert (snapshot / "model.safetensors").read_bytes() == (
        tmp_path / "model" / "model.safetensors"
    ).read_bytes()

    # Online but the server is gone: the cache still answers.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert open_artifact("alice/offline").path == snapshot


def test_push_ensemble_folder_in_one_commit(hub, tmp_path, cli):
    from glacier.artifacts import EnsembleFolder, open_artifact

    ens = tmp_path / "ensemble"
    members = []
    for seed, fold in ((42, 0), (43, 1)):
        name = f"seed{seed}_fold{fold}"
        _save_model(ens / "members" / name, seed=seed, mcc=0.6 + fold / 100)
        members.append(
            {
                "name": name,
                "path": f"members/{name}",
                "seed": seed,
                "fold": fold,
                "metrics": {"mcc": 0.6 + fold / 100},
            }
        )
    manifest = {
        "format": "glacier-ensemble",
        "format_version": 1,
        "bands": list(BANDS),
        "members": members,
        "metrics": {"mcc": 0.655},
    }
    (ens / "ensemble.json").write_text(json.dumps(manifest))

    assert cli("push", ens, "alice/glacier-ensemble", "--public") == 0
    stored = hub.files("alice/glacier-ensemble")
    assert {
        "ensemble.json",
        "README.md",
        "members/seed42_fold0/model.safetensors",
        "members/seed43_fold1/config.json",
    } <= set(stored)
    assert _commits(hub, "alice/glacier-ensemble") == 1
    assert not hub.repos["alice/glacier-ensemble"].private
    card = stored["README.md"].decode()
    assert "Ensemble members" in card and "seed43_fold1" in card and "0.6550" in card

    ensemble = open_artifact("alice/glacier-ensemble")
    assert isinstance(ensemble, EnsembleFolder) and ensemble.repo_id == "alice/glacier-ensemble"
    model, _ = ensemble.members()["seed43_fold1"].load()
    assert model.bands == BANDS
    assert "members/seed43_fold1/boundary_head.safetensors" in stored

    # A pull fetches the members' files, not what else lies in the repo or in a member's folder.
    hub.put_files("alice/glacier-ensemble", {"junk.bin": b"x" * 1000, "members/seed42_fold0/junk.bin": b"x"})
    out = tmp_path / "pulled"
    assert cli("pull", "alice/glacier-ensemble", "--out", out) == 0
    assert not list(out.rglob("junk.bin")) and hub.count("GET", r"junk\.bin") == 0
    assert (out / "members" / "seed43_fold1" / "model.safetensors").is_file()


def test_run_folder_sends_best_model_and_states_only_when_asked(hub, tmp_path, cli):
    run = tmp_path / "run"
    _save_model(run / "best")
    (run / "metrics.csv").write_text("epoch,val_mcc\n1,0.5\n2,0.61\n")
    cv = {"folds": [{"fold": 0, "mcc": 0.6}, {"fold": 1, "mcc": 0.64}]}
    (run / "cv_summary.json").write_text(json.dumps(cv))
    (run / "states" / "state_000002").mkdir(parents=True)
    (run / "states" / "state_000002" / "optimizer.bin").write_bytes(os.urandom(256))

    assert cli("push", run, "alice/run") == 0
    stored = hub.files("alice/run")
    assert {"model.safetensors", "config.json", "metrics.csv", "cv_summary.json", "README.md"} <= set(stored)
    assert not any(p.startswith("states/") for p in stored)
    assert "0.6200 +/- 0.0200" in stored["README.md"].decode()

    assert "Training states" not in stored["README.md"].decode()

    assert cli("push", run, "alice/run", "--include-states", "--revision", "with-states") == 0
    with_states = hub.files("alice/run", "with-states")
    assert "states/state_000002/optimizer.bin" in with_states
    assert "training states only" in with_states["README.md"].decode()
    assert "states/state_000002/optimizer.bin" not in hub.files("alice/run", "main")


def test_pull_fetches_only_the_artifacts_files_and_keeps_the_users(hub, tmp_path, cli):
    run = tmp_path / "run"
    _save_model(run / "best")
    state = "states/state_000002/optimizer.bin"
    (run / state).parent.mkdir(parents=True)
    (run / state).write_bytes(os.urandom(256))
    assert cli("push", run, "alice/run", "--include-states") == 0
    hub.put_files("alice/run", {"junk.bin": os.urandom(300_000), "notes/todo.txt": b"later"})

    out = tmp_path / "pulled"
    assert cli("pull", "alice/run", "--out", out) == 0
    model = ["README.md", "boundary_head.safetensors", "config.json", "model.safetensors"]
    assert _digest(out).keys() == {".glacier-output.json", *model, state}  # a pushed run's states come too
    assert hub.count("GET", r"junk\.bin") == 0 and hub.count("GET", r"todo\.txt") == 0  # never fetched

    (out / "mine.txt").write_text("mine")
    hub.put_files("alice/run", {}, remove=(state,))
    assert cli("pull", "alice/run", "--out", out) == 0
    assert _digest(out).keys() == {".glacier-output.json", *model, "mine.txt"}  # pull's stale file gone
    assert (out / "mine.txt").read_text() == "mine" and not (out / "states").exists()


# ---------------------------------------------------------------------- failures
def test_bad_token_is_a_clear_error(hub, tmp_path, monkeypatch, cli, capsys):
    _save_model(tmp_path / "model")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    assert cli("push", tmp_path / "model", "alice/x") == 1
    err = capsys.readouterr().err
    assert "'alice/x'" in err and "rejected the token" in err and "HF_TOKEN" in err
    assert "Traceback" not in err and "hf_wrong" not in err
    assert "alice/x" not in hub.repos


def test_no_token_fails_before_any_request(hub, tmp_path, monkeypatch, cli, capsys):
    _save_model(tmp_path / "model")
    monkeypatch.delenv("HF_TOKEN")
    assert cli("push", tmp_path / "model", "alice/x") == 1
    assert "not logged in" in capsys.readouterr().err
    assert hub.requests == []


def test_missing_and_private_repos_on_pull(hub, tmp_path, monkeypatch, cli, capsys):
    assert cli("pull", "alice/nope", "--out", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "'alice/nope'" in err and "not found" in err
    assert not (tmp_path / "out").exists()

    _save_model(tmp_path / "model")
    assert cli("push", tmp_path / "model", "alice/secret") == 0
    monkeypatch.setenv("HF_TOKEN", BOB_TOKEN)
    assert cli("pull", "alice/secret", "--out", tmp_path / "out") == 1
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_server_down_is_a_clear_error(hub, tmp_path, cli, capsys):
    _save_model(tmp_path / "model")
    hub.stop()
    assert cli("push", tmp_path / "model", "alice/x") == 1
    err = capsys.readouterr().err
    assert "cannot reach the Hub" in err and "run the same command again" in err
    assert cli("pull", "alice/x", "--out", tmp_path / "out") == 1
    assert "not in the local cache" in capsys.readouterr().err


def test_interrupted_push_changes_nothing_and_rerun_succeeds(hub, tmp_path, cli, capsys):
    local = tmp_path / "model"
    _save_model(local)
    before = _digest(local)
    hub.fail("commit", status=500)

    assert cli("push", local, "alice/flaky") == 1
    sent = hub.count("PUT", r"^/lfs-upload/")
    err = capsys.readouterr().err
    assert "'alice/flaky'" in err and "HTTP 500" in err and "run the same command again" in err
    assert _commits(hub, "alice/flaky") == 0
    assert _digest(local) == before

    assert cli("push", local, "alice/flaky") == 0
    assert _commits(hub, "alice/flaky") == 1
    assert hub.files("alice/flaky")["model.safetensors"] == (local / "model.safetensors").read_bytes()
    assert hub.count("PUT", r"^/lfs-upload/") == sent  # the rerun did not send the weights again


def test_pulled_repo_must_be_a_model(hub, tmp_path, cli, capsys):
    from huggingface_hub import HfApi

    HfApi().create_repo("alice/notes")
    HfApi().upload_file(path_or_fileobj=b"hello", path_in_repo="notes.txt", repo_id="alice/notes")
    assert cli("pull", "alice/notes", "--out", tmp_path / "out") == 1
    assert "not a glacier model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_pull_keeps_the_users_files_and_overwrites_none(hub, tmp_path, cli, capsys):
    _save_model(tmp_path / "model")
    assert cli("push", tmp_path / "model", "alice/m") == 0
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    assert cli("pull", "alice/m", "--out", keep) == 0  # the model lands beside the notes
    assert (keep / "notes.txt").read_text() == "mine"
    assert (keep / "model.safetensors").read_bytes() == (
        tmp_path / "model" / "model.safetensors"
    ).read_bytes()
    assert cli("pull", "alice/m", "--out", keep) == 0  # its own files: replaced

    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")  # a file of the model's name, not written by pull
    assert cli("pull", "alice/m", "--out", other) == 1
    assert "config.json, which glacier pull did not write" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["config.json"]


def test_open_artifact_local_and_errors(hub, tmp_path):
    from glacier.artifacts import open_artifact

    _save_model(tmp_path / "model")
    assert open_artifact(str(tmp_path / "model")).path == tmp_path / "model"
    with pytest.raises(HubError, match="no such local folder"):
        open_artifact("./runs/missing/best")
    with pytest.raises(HubError, match="not a local folder, and as a Hub repo id.*not found"):
        open_artifact("alice/never-pushed")
    assert hub.requests and all("never-pushed" in r[1] for r in hub.requests)


def test_create_repo_early(hub, monkeypatch):
    from glacier.hub import create_repo_early

    assert create_repo_early("alice/early").endswith("/alice/early")
    assert create_repo_early("alice/early").endswith("/alice/early")  # exists: fine
    with pytest.raises(HubError, match="not a valid Hub repo id"):
        create_repo_early("alice/bad id")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(HubError, match="rejected the token"):
        create_repo_early("alice/other")


def test_token_never_leaks(hub, tmp_path):
    """Push and pull with the CLI in a subprocess (settings from the environment only)."""
    _save_model(tmp_path / "model")
    env = {**os.environ, **hub.env, "PYTHONPATH": str(REPO_ROOT)}
    outputs = []
    for argv in (
        ["push", str(tmp_path / "model"), "alice/leak"],
        ["pull", "alice/leak", "--out", str(tmp_path / "pulled")],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "glacier", *argv], env=env, capture_output=True, timeout=120, cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr.decode()
        outputs += [proc.stdout, proc.stderr]
    bad = subprocess.run(
        [sys.executable, "-m", "glacier", "push", str(tmp_path / "model"), "bob/leak"],
        env=env,
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert bad.returncode == 1 and b"403" in bad.stderr
    outputs += [bad.stdout, bad.stderr]

    secret = TOKEN.encode()
    assert hub.count("POST", r"/commit/") == 1
    assert all(secret not in blob for blob in hub.all_stored_bytes())
    assert all(secret not in out for out in outputs)
    assert all(secret not in p.read_bytes() for p in (tmp_path / "pulled").rglob("*") if p.is_file())


def test_glacier_predict_from_a_hub_id_matches_the_local_model(hub, tmp_path, cli):
    import numpy as np

    from glacier.data.raster import read_single_band, write_raster
    from glacier.domain import COMPETITION_BAND_FOLDERS

    rng = np.random.default_rng(0)
    tiles = tmp_path / "tiles"
    for folder, scale in zip(COMPETITION_BAND_FOLDERS, (0.1, 0.2, 0.3, 0.4, 280.0), strict=True):
        write_raster(tiles / folder / "img001.tif", (scale * (1 + rng.random((64, 64)))).astype(np.float32))
    _save_model(tmp_path / "model")
    assert cli("push", tmp_path / "model", "alice/predict") == 0

    assert cli("predict", tmp_path / "model", tiles, "--out", tmp_path / "local", "--device", "cpu") == 0
    assert cli("predict", "alice/predict", tiles, "--out", tmp_path / "hub", "--device", "cpu") == 0
    assert hub.count("GET", r"^/alice/predict/resolve/") >= 2  # the weights came from the Hub
    local, _ = read_single_band(tmp_path / "local" / "img001.tif")
    pulled, _ = read_single_band(tmp_path / "hub" / "img001.tif")
    assert local.shape == (64, 64)
    np.testing.assert_array_equal(local, pulled)


def test_smp_loads_a_pushed_model_and_predicts_what_glacier_predicts(hub, tmp_path, cli):
    import numpy as np
    import segmentation_models_pytorch as smp
    import torch
    from huggingface_hub import ModelCard
    from test_predict import read_bands, smp_mask_from_card, write_scenes

    from glacier.data.raster import read_single_band

    scenes = write_scenes(tmp_path / "scenes", {"img001.tif": (64, 64)})
    model = _save_model(tmp_path / "model")
    assert cli("push", tmp_path / "model", "alice/smp") == 0

    net = smp.from_pretrained("alice/smp").eval()
    x = torch.randn(1, len(BANDS), 64, 64)
    with torch.no_grad():
        assert torch.equal(net(x), model(x))

    # The card's plain-smp code, run as written, gives glacier's mask.
    assert (
        cli("predict", "alice/smp", scenes, "--out", tmp_path / "pred", "--tta", "none", "--device", "cpu")
        == 0
    )
    expected, _ = read_single_band(tmp_path / "pred" / "img001.tif")
    card = hub.files("alice/smp")["README.md"].decode()
    mask = smp_mask_from_card(card, "alice/smp", read_bands(scenes, "img001.tif"))
    np.testing.assert_array_equal(mask, expected)
    assert len(np.unique(expected)) > 1  # a real comparison, not two blank masks
    validate_on_the_hub(ModelCard(card))  # the Hub's check of the front matter


def test_pushing_a_version_1_folder_uploads_the_current_format(hub, tmp_path, cli):
    import segmentation_models_pytorch as smp
    import torch
    from test_artifacts import tiny_model, write_version_1

    model = tiny_model(5)
    old = tmp_path / "old"
    write_version_1(old, model)
    before = _digest(old)
    assert cli("push", old, "alice/upgraded") == 0
    assert _digest(old) == before  # the local folder is only read
    stored = hub.files("alice/upgraded")
    assert {"model.safetensors", "boundary_head.safetensors", "config.json", "README.md"} <= set(stored)
    assert json.loads(stored["config.json"])["_glacier"]["format_version"] == 2
    x = torch.randn(1, 5, 32, 32)
    with torch.no_grad():
        assert torch.equal(smp.from_pretrained("alice/upgraded").eval()(x), model.net(x))


def test_ensemble_card_passes_the_hubs_validation(hub, tmp_path, cli):
    from huggingface_hub import ModelCard

    from glacier.artifacts import EnsembleFolder, EnsembleMember

    members = []
    for seed in (1, 2):
        _save_model(tmp_path / f"m{seed}", seed=seed)
        members.append(EnsembleMember(f"s{seed}", tmp_path / f"m{seed}", seed=seed))
    ensemble = EnsembleFolder.write(tmp_path / "ens", members)
    assert cli("push", ensemble.path, "alice/ens-card") == 0
    card = ModelCard(hub.files("alice/ens-card")["README.md"].decode())
    validate_on_the_hub(card)
    assert card.data.library_name == "segmentation-models-pytorch" and "members/s2" in card.text
