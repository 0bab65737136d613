"""Out-of-fold predictions under ``accelerate launch`` with 2 real processes, and a seed x
fold ensemble whose combination and calibration are chosen on them, carried to all data."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from test_multiprocess_training import launch
from training_data import FAST, prepared_competition, tiny_run

from glacier.artifacts import RunFolder
from glacier.config import load_config
from glacier.decisions.loading import calibrated_models
from glacier.training.oof import write_oof


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("data"), n_images=6, folds=2)


def test_two_processes_write_each_folds_oof_once_and_as_one_process_would(prep, tmp_path):
    run = tmp_path / "cv"
    done = launch(
        "-m", "glacier", "finetune", "--config", "tiny", "--data", str(prep), "--out", str(run),
        "--all-folds", "--epochs", "1", *FAST,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 process(es)" in done.stdout
    assert done.stdout.count("out-of-fold predictions of") == 2  # the main process, once per fold
    summary = json.loads((run / "cv_summary.json").read_text())
    assert summary["oof"]["coverage"].startswith("6 of 6 tiles")
    for fold in (0, 1):
        folder = RunFolder(run / f"fold_{fold}")
        single = tmp_path / f"single_{fold}"
        single.mkdir()
        (single / "best").symlink_to(folder.best)
        recomputed = write_oof(RunFolder(single), load_config(folder.path / "config.yaml"))
        np.testing.assert_array_equal(recomputed.probabilities(), folder.oof.probabilities())
        np.testing.assert_array_equal(recomputed.tiles, folder.oof.tiles)


@pytest.fixture(scope="module")
def ensemble(prep, tmp_path_factory):
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("ens") / "ensemble"
    args = tiny_run("ensemble", prep, out, "--seeds", "1,2", "--all-folds", "--epochs", "2")
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert run_cli(*args, *FAST) == 0
    (out.parent / "ensemble.log").write_text(printed.getvalue())
    return out


def shipped_combination(oof) -> str:
    """What the one-standard-error rule ships, from the table and the choice's figures: the
    best cross-fitted combination when it leads the probability mean (scored by its rule
    cross-fitted or its argmax, whichever is higher) by more than the standard error, else the
    probability mean."""
    candidates = [row for row in oof["table"] if row.get("candidate")]
    mean = next(row for row in candidates if row["name"] == "probability mean")
    mean_mcc = max(mean["mcc_cross_fitted"], mean["mcc_argmax"])
    best = max(candidates, key=lambda row: mean_mcc if row is mean else row["mcc_cross_fitted"])
    choice = oof["choice"]
    assert choice["best"] == best["name"] and choice["rule"] == "one standard error"
    assert (choice.get("reference_scored_by") == "argmax") == (mean["mcc_argmax"] > mean["mcc_cross_fitted"])
    if best["name"] == "probability mean":
        return best["name"]
    assert choice["margin"] == pytest.approx(best["mcc_cross_fitted"] - mean_mcc, abs=1e-12)
    assert choice["standard_error"] > 0
    return best["name"] if choice["margin"] > choice["standard_error"] else "probability mean"


def test_ensemble_chooses_its_combination_on_oof_and_stores_its_rule(ensemble):
    manifest = json.loads((ensemble / "ensemble.json").read_text())
    oof, calibration = manifest["oof"], manifest["calibration"]
    names = [row["name"] for row in oof["table"]]
    assert names[:2] == ["seed1 alone", "seed2 alone"]
    assert {"probability mean", "log-probability mean"} <= set(names)
    assert any(n.startswith("greedy selection") for n in names) and "weight soup (per fold)" in names
    shipped = shipped_combination(oof)
    assert set(calibration["weights"]) == {m["name"] for m in manifest["members"]}
    assert calibration["fitted"]["kind"] == "ensemble" and oof["calibrated_mcc"] >= oof["mcc"] - 1e-9
    if calibration["fitted"].get("kept") is False:
        # Every fitted rule did worse on held-out folds than the plain argmax: none is shipped.
        assert calibration["fitted"]["rejected"]["cross_fitted_mcc"] < oof["mcc"]
        assert oof["chosen"] == f"probability mean, no rule ({shipped} not kept)"
        assert set(calibration["weights"].values()) == {1.0} and not any(calibration["log_bias"])
        assert calibration["combine"] == "probability" and calibration["temperature"] == 1.0
    else:
        assert oof["chosen"] == shipped
    assert manifest["final_length"]["runs"] and len(manifest["final_length"]["runs"]) == 4
    for member in manifest["members"]:
        assert RunFolder(ensemble / "runs" / member["name"]).oof.exists()


def test_ensemble_prints_its_combinations_side_by_side_and_the_one_chosen(ensemble):
    """Probability mean, log-probability mean, greedy selection and weight soup, each by
    argmax, calibrated and cross-fitted on the same OOF pixels, printed as one table; then
    the choice (by cross-fitted MCC) and the chosen rule's OOF MCC before and after."""
    oof = json.loads((ensemble / "ensemble.json").read_text())["oof"]
    printed = (ensemble.parent / "ensemble.log").read_text()
    assert "| combination | members per tile | OOF MCC argmax | OOF MCC calibrated |" in printed
    for row in oof["table"]:
        cells = (
            f"| {row['name']} | {row['members_per_tile']} | {row['mcc_argmax']:.4f} | {row['mcc_calibrated']:.4f} | "
            f"{row['mcc_cross_fitted']:.4f} |"
        )
        assert cells in printed, cells
    shipped, choice = shipped_combination(oof), oof["choice"]
    line = next(line for line in printed.splitlines() if line.startswith("chosen on out-of-fold MCC: "))
    assert line.startswith(f"chosen on out-of-fold MCC: {shipped} ({choice['best']}")
    if "margin" in choice:
        assert (
            f"by {choice['margin']:+.4f} cross-fitted MCC, standard error {choice['standard_error']:.4f}"
            in line
        )
    assert f"pooled out-of-fold MCC {oof['mcc']:.4f}" in printed
    if oof["chosen"] == shipped:
        assert f"calibrated out-of-fold MCC {oof['calibrated_mcc']:.4f}" in printed
    else:  # its rule did worse on held-out folds than the plain argmax
        assert "decision rule not kept: its cross-fitted MCC" in printed
        assert f"below the plain argmax's {oof['mcc']:.4f}" in printed


def test_all_data_ensemble_carries_the_rule_per_seed(ensemble, prep, tmp_path, cli):
    final = tmp_path / "final"
    assert cli("ensemble", "--config", "tiny", "--data", prep, "--out", final, "--seeds", "1,2",
               "--all-data", "--from-cv", ensemble, *FAST) == 0  # fmt: skip
    source = json.loads((ensemble / "ensemble.json").read_text())["calibration"]
    carried = json.loads((final / "ensemble.json").read_text())["calibration"]
    by_seed = source["fitted"]["unit_weights"]
    assert carried["weights"] == {"seed1_all": by_seed["seed1"], "seed2_all": by_seed["seed2"]}
    assert carried["log_bias"] == source["log_bias"] and carried["combine"] == source["combine"]
    chosen = calibrated_models(final)
    assert chosen.calibration is not None and chosen.calibration.fitted["carried_from"] == str(ensemble)


def test_an_ensemble_without_its_decisions_skips_the_oof_fit(ensemble, prep, tmp_path):
    """``fit_decisions=False`` (the demo's extra seeds, pooled with other members later)
    writes the members but fits no combination or calibration on them."""
    import shutil

    from glacier.training.ensemble import train_ensemble

    out = tmp_path / "ensemble"
    shutil.copytree(ensemble, out, symlinks=True)
    (out / "ensemble.json").unlink()
    cfg = load_config("tiny", [f"data.path={prep}", "training.epochs=2", "training.sampler.samples_per_epoch=16",
                               "training.batch_size=4"])  # fmt: skip
    printed: list[str] = []
    result = train_ensemble(cfg, seeds=[1], folds="all", out=out, resume="latest", fit_decisions=False,
                            print_fn=printed.append)  # fmt: skip
    assert result.finished and sorted(result.members) == ["seed1_fold0", "seed1_fold1"]
    manifest = json.loads((out / "ensemble.json").read_text())
    assert [m["name"] for m in manifest["members"]] == ["seed1_fold0", "seed1_fold1"]
    assert "oof" not in manifest and "calibration" not in manifest
    assert not any("out-of-fold MCC" in line for line in printed)
