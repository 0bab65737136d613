"""Training commands in-process on tiny prepared datasets: run folders, CV, ensembles."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from training_data import FAST, prepared_competition, prepared_hkh, tiny_run

from glacier.artifacts import EnsembleFolder


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("data"))


def test_finetune_one_fold_writes_the_run_folder(cli, prep, tmp_path, capsys):
    from glacier.data.prepared import PreparedDataset
    from glacier.models import load_model_folder

    run = tmp_path / "run"
    code = cli(
        "finetune", "--config", "tiny", "--data", prep, "--out", run, "--epochs", "2", "--fold", "1", *FAST
    )
    assert code == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "epoch 2/2" in printed and "MCC" in printed and "1 process(es)" in printed
    assert "validate" in captured.err and "epoch 1/2" in captured.err  # progress bars for both

    for name in ("config.yaml", "metrics.csv", "result.json", "best/model.safetensors", "last/config.json"):
        assert (run / name).is_file(), name
    assert list((run / "logs").rglob("events.out.tfevents.*")), "no TensorBoard events"
    states = sorted(p.name for p in (run / "states").iterdir())
    assert states == ["state_000004", "state_000008"]  # keep_last=2, 4 batches per epoch

    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for column in (
        "train_loss",
        "train_focal",
        "val_loss",
        "val_mcc",
        "iou_glacier",
        "miou",
        "lr",
        "images_per_s",
    ):
        assert rows[0][column] != "", column

    model, meta = load_model_folder(run / "best")
    prepared = PreparedDataset.open(prep)
    assert meta.bands == tuple(prepared.bands)
    assert meta.normalization == prepared.stats  # the run's own training statistics travel with it
    # tiny hands on its last model (checkpoints.select=last), with the last epoch's figures.
    assert meta.metrics["mcc"] == pytest.approx(float(rows[-1]["val_mcc"]), abs=1e-5)
    assert (run / "best/model.safetensors").read_bytes() == (run / "last/model.safetensors").read_bytes()
    provenance = meta.training["provenance"]
    assert provenance["fold"] == 1 and provenance["seed"] == 42
    assert provenance["epochs_run"] == meta.metrics["epoch"] == 2
    assert "hands on its last model (val MCC" in printed
    assert meta.training["dataset"] == "competition" and meta.training["data"]["fold"] == 1
    result = json.loads((run / "result.json").read_text())
    assert result["stopped_reason"] == "completed" and result["epochs_run"] == 2


def test_select_best_hands_on_the_epoch_of_the_best_validation_mcc(cli, prep, tmp_path):
    from glacier.models import load_model_folder

    run = tmp_path / "run"
    args = ("--epochs", "3", "--set", "checkpoints.select=best", *FAST)
    assert cli("finetune", "--config", "tiny", "--data", prep, "--out", run, *args) == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    best = max(rows, key=lambda r: float(r["val_mcc"]))
    _, meta = load_model_folder(run / "best")
    assert meta.metrics["mcc"] == pytest.approx(float(best["val_mcc"]), abs=1e-5)
    assert meta.metrics["epoch"] == int(best["epoch"])


def test_select_last_validates_the_model_it_hands_on_after_a_stop_between_validations(
    cli, prep, tmp_path, capsys, monkeypatch
):
    from glacier.models import load_model_folder
    from glacier.training import checkpoints

    # The session's time runs out after epoch 3; with val_every=2 only epoch 2 was validated.
    asked = []
    monkeypatch.setattr(
        checkpoints.Deadline, "next_epoch_fits", lambda self: asked.append(1) or len(asked) < 3
    )
    run = tmp_path / "run"
    args = ("--epochs", "5", "--set", "training.val_every=2", *FAST)
    assert cli("finetune", "--config", "tiny", "--data", prep, "--out", run, *args) == 3  # stopped
    assert json.loads((run / "result.json").read_text())["stopped_reason"] == "max_hours"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["val_mcc"] != "" for r in rows] == [False, True, False]
    _, meta = load_model_folder(run / "best")
    assert meta.metrics["epoch"] == 3
    assert meta.metrics["mcc"] != pytest.approx(float(rows[1]["val_mcc"]), abs=1e-9)  # not epoch 2's
    printed = capsys.readouterr().out
    assert f"hands on its last model (val MCC {meta.metrics['mcc']:.4f})" in printed


def test_a_run_folder_reads_back_without_torch(cli, prep, tmp_path):
    run = tmp_path / "run"
    assert cli("finetune", "--config", "tiny", "--data", prep, "--out", run, "--epochs", "1", *FAST) == 0
    script = (
        "import sys; from glacier.artifacts.run import RunFolder; r = RunFolder(sys.argv[1]); "
        "res = r.result(); print(res.stopped_reason, res.epochs_run, res.finished, r.config()['data']['fold'], "
        "len(r.metrics_rows()), r.latest_state().name, r.best.is_dir(), 'torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(run)], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["completed", "1", "True", "0", "1", "state_000004", "True", "False"]


def test_refuses_to_overwrite_a_run_without_resume(cli, prep, tmp_path, capsys):
    run = tmp_path / "run"
    args = ("finetune", "--config", "tiny", "--data", prep, "--out", run, "--epochs", "1", *FAST)
    assert cli(*args) == 0
    assert cli(*args) == 1
    assert "--resume latest" in capsys.readouterr().err


def test_pretrain_then_finetune_with_band_transfer(cli, prep, tmp_path, capsys):
    hkh = prepared_hkh(tmp_path)  # blue, green, red only
    pre = tmp_path / "pre"
    code = cli(
        "pretrain", "--config", "tiny", "--data", hkh, "--out", pre, "--epochs", "1",
        "--set", "data.use_all_for_training=true", *FAST,
    )  # fmt: skip
    assert code == 0
    assert (pre / "best" / "model.safetensors").is_file()  # no validation: best = last
    assert json.loads((pre / "best" / "config.json").read_text())["_glacier"]["bands"] == [
        "blue",
        "green",
        "red",
    ]

    capsys.readouterr()
    run = tmp_path / "ft"
    code = cli(*tiny_run("finetune", prep, run, "--epochs", "1", "--init-from", pre / "best", *FAST))
    assert code == 0
    printed = capsys.readouterr().out
    assert "bands matched ['blue', 'green', 'red']" in printed
    assert "new (mean filter) ['swir1', 'tir']" in printed
    training = json.loads((run / "best" / "config.json").read_text())["_glacier"]["training"]
    assert training["provenance"]["init_from"] == str(pre / "best")
    assert training["pretrain_dataset"] == "hkh"


def test_all_folds_writes_cv_summary_and_resume_skips_finished_folds(cli, prep, tmp_path, capsys):
    run = tmp_path / "cv"
    code = cli(
        "finetune", "--config", "tiny", "--data", prep, "--out", run, "--epochs", "1", "--all-folds", *FAST
    )
    assert code == 0
    summary = json.loads((run / "cv_summary.json").read_text())
    assert summary["num_folds"] == 3 and [f["fold"] for f in summary["folds"]] == [0, 1, 2]
    mccs = [f["mcc"] for f in summary["folds"]]
    assert summary["mean"]["mcc"] == pytest.approx(sum(mccs) / 3)
    assert "mean ± std" in (run / "cv_summary.md").read_text()
    for k in range(3):
        assert (run / f"fold_{k}" / "best" / "config.json").is_file()
    assert "| fold | MCC" in capsys.readouterr().out

    # An interrupted fold: drop fold 2's result (as if killed after its last state); resume
    # skips folds 0 and 1 and finishes fold 2 from its state.
    (run / "fold_2" / "result.json").unlink()
    code = cli(*tiny_run("finetune", prep, run, "--epochs", "1", "--all-folds", "--resume", "latest", *FAST))
    assert code == 0
    printed = capsys.readouterr().out
    assert "fold 0: already finished" in printed and "fold 1: already finished" in printed
    assert "resumed from" in printed
    assert (run / "fold_2" / "result.json").is_file()


def test_ensemble_writes_an_ensemble_folder(cli, prep, tmp_path):
    ens = tmp_path / "ens"
    code = cli(*tiny_run("ensemble", prep, ens, "--epochs", "1", "--seeds", "1,2", "--folds", "0", *FAST))
    assert code == 0
    assert EnsembleFolder.found_at(ens)
    manifest = EnsembleFolder(ens).manifest
    assert [m["name"] for m in manifest["members"]] == ["seed1_fold0", "seed2_fold0"]
    assert [m["seed"] for m in manifest["members"]] == [1, 2]
    assert all(m["fold"] == 0 and "mcc" in m["metrics"] for m in manifest["members"])
    assert manifest["bands"] == ["blue", "green", "red", "swir1", "tir"]
    assert (ens / "README.md").is_file()

    for member in EnsembleFolder(ens).members().values():
        member.load()


def test_nonfinite_loss_stops_with_a_clear_error(cli, prep, tmp_path, capsys, monkeypatch):
    import torch

    from glacier.losses import CombinedLoss

    real = CombinedLoss.forward

    def nan_loss(self, *args, **kwargs):
        total, parts = real(self, *args, **kwargs)
        return total * torch.tensor(float("nan")), parts

    monkeypatch.setattr(CombinedLoss, "forward", nan_loss)
    code = cli(
        "finetune", "--config", "tiny", "--data", prep, "--out", tmp_path / "a", "--epochs", "1", *FAST
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "epoch 1, batch 1" in err and "--lr" in err

    code = cli(
        "finetune", "--config", "tiny", "--data", prep, "--out", tmp_path / "b", "--epochs", "3",
        "--set", "training.nonfinite_loss=skip", *FAST,
    )  # fmt: skip
    assert code == 1
    captured = capsys.readouterr()
    assert "skipped a step" in captured.out
    assert "10 steps had a non-finite loss" in captured.err


def test_bad_options_are_clear_errors(cli, prep, tmp_path, capsys):
    assert cli("finetune", "--config", "tiny", "--data", prep, "--fold", "0", "--all-folds") == 1
    assert "exclude each other" in capsys.readouterr().err
    assert cli("finetune", "--config", "tiny", "--data", prep, "--out", tmp_path / "x", "--fold", "7") == 1
    assert "fold 7" in capsys.readouterr().err
    empty = tmp_path / "e"
    empty.mkdir()
    assert (
        cli("finetune", "--config", "tiny", "--data", prep, "--out", tmp_path / "y", "--init-from", empty)
        == 1
    )
    assert "not a model folder" in capsys.readouterr().err
    # Fold lists are checked against the prepared dataset before any member trains.
    ens = tmp_path / "ens"
    assert (
        cli("ensemble", "--config", "tiny", "--data", prep, "--out", ens, "--seeds", "1", "--folds", "0,5")
        == 1
    )
    assert "fold 5 is out of range" in capsys.readouterr().err
    assert not ens.exists()
    # --seed and --fold, as on every training command, repeated or as lists.
    assert cli(*tiny_run("ensemble", prep, ens, "--seed", "1", "--fold", "0", "--fold", "5")) == 1
    assert "fold 5 is out of range" in capsys.readouterr().err
    assert cli("ensemble", "--config", "tiny", "--data", prep, "--out", ens, "--seed", "1,x") == 1
    assert "--seed '1,x': write integers" in capsys.readouterr().err
