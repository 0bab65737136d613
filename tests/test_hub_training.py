"""`--push-to-hub` on a training command, against the fake Hub server (tests/hub_server.py)."""

from __future__ import annotations

import pytest
from test_hub import TOKEN, hub  # noqa: F401  (the fake-Hub fixture)
from training_data import FAST, prepared_competition


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("prep"), n_images=6, folds=2)


def _finetune(cli, prep, run, repo_id):
    return cli(
        "finetune", "--config", "tiny", "--data", prep, "--out", run, "--epochs", "1", "--fold", "0",
        "--push-to-hub", repo_id, *FAST,
    )  # fmt: skip


def test_finetune_pushes_its_best_model_at_the_end(hub, prep, tmp_path, cli):  # noqa: F811
    run = tmp_path / "ft"
    assert _finetune(cli, prep, run, "alice/ft") == 0
    files = hub.files("alice/ft")
    assert {"model.safetensors", "config.json", "README.md"} <= set(files)
    assert files["model.safetensors"] == (run / "best" / "model.safetensors").read_bytes()
    assert TOKEN.encode() not in b"".join(files.values())


def test_a_bad_token_fails_before_any_training(hub, prep, tmp_path, cli, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    run = tmp_path / "ft"
    assert _finetune(cli, prep, run, "alice/ft2") == 1
    err = capsys.readouterr().err
    assert "alice/ft2" in err and "Traceback" not in err
    assert not (run / "metrics.csv").exists() and not (run / "states").exists()
    assert "alice/ft2" not in hub.repos


def test_finetune_from_a_hub_id_names_its_base_model(hub, prep, tmp_path, cli):  # noqa: F811
    import json

    from huggingface_hub import ModelCard

    assert _finetune(cli, prep, tmp_path / "first", "alice/base") == 0
    run = tmp_path / "second"
    code = cli(
        "finetune", "--config", "tiny", "--data", prep, "--out", run, "--epochs", "1", "--fold", "0",
        "--init-from", "alice/base", "--push-to-hub", "alice/tuned", *FAST,
    )  # fmt: skip
    assert code == 0
    provenance = json.loads((run / "best" / "config.json").read_text())["_glacier"]["training"]["provenance"]
    assert provenance["init_from_hub"] == {"repo_id": "alice/base", "revision": None}
    assert ModelCard((run / "best" / "README.md").read_text()).data.base_model == "alice/base"
    assert ModelCard(hub.files("alice/tuned")["README.md"].decode()).data.base_model == "alice/base"
    # Trained from scratch: no base model.
    assert ModelCard((tmp_path / "first" / "best" / "README.md").read_text()).data.base_model is None
