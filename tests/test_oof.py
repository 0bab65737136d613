"""Out-of-fold predictions of real (tiny) cross-validation runs: written once per fold,
pooled over every training image exactly once, scored as sklearn scores, calibrated into the
fold models, and carried to the all-data final model trained for the CV-chosen length."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import statistics

import numpy as np
import pytest
from sklearn.metrics import matthews_corrcoef
from training_data import FAST, prepared_competition, tiny_run

from glacier.artifacts import ModelFolder, RunFolder
from glacier.config import load_config
from glacier.data.prepared import PreparedDataset
from glacier.domain import CLASS_NAMES, IGNORE_INDEX
from glacier.training.oof import write_oof
from tests.cli_checks import assert_clean_failure

FOLDS = 3


@pytest.fixture(scope="module")
def cv(tmp_path_factory):
    from tests.conftest import run_cli

    root = tmp_path_factory.mktemp("oof")
    prep = prepared_competition(root, n_images=6, folds=FOLDS)
    run = root / "cv"
    args = tiny_run("finetune", prep, run, "--all-folds", "--epochs", "2", *FAST)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert run_cli(*args) == 0
    (root / "cv.log").write_text(out.getvalue())  # what the command printed
    return prep, run, args


def test_every_fold_writes_its_validation_tiles_and_the_pool_has_each_image_once(cv):
    prep, run, _ = cv
    prepared = PreparedDataset.open(prep)
    seen = []
    for fold in range(FOLDS):
        oof = RunFolder(run / f"fold_{fold}").oof
        assert oof.exists() and oof.fold == fold and oof.meta["tta"] == "flip"
        _, val = prepared.train_val_indices(fold)
        np.testing.assert_array_equal(oof.tiles, val)
        np.testing.assert_array_equal(oof.labels(), prepared.masks[val])
        probs = oof.probabilities()
        assert probs.dtype == np.float16 and probs.shape == (len(val), 4, 64, 64)
        np.testing.assert_allclose(probs.astype(np.float32).sum(axis=1), 1.0, atol=5e-3)
        assert oof.meta["images"] == [prepared.manifest["tiles"][t]["image"] for t in val]
        seen += oof.meta["images"]
    assert sorted(seen) == sorted(i["id"] for i in prepared.manifest["images"])  # every image exactly once


def test_pooled_oof_mcc_and_iou_are_sklearns(cv):
    _, run, _ = cv
    summary = json.loads((run / "cv_summary.json").read_text())
    labels, preds = [], []
    for fold in range(FOLDS):
        oof = RunFolder(run / f"fold_{fold}").oof
        labels.append(np.asarray(oof.labels()).ravel())
        preds.append(np.asarray(oof.probabilities()).argmax(axis=1).ravel())
    labels, preds = np.concatenate(labels), np.concatenate(preds)
    valid = labels != IGNORE_INDEX
    assert summary["oof"]["mcc"] == pytest.approx(matthews_corrcoef(labels[valid], preds[valid]), abs=1e-12)
    glacier = (labels[valid] == 1, preds[valid] == 1)
    iou = (glacier[0] & glacier[1]).sum() / (glacier[0] | glacier[1]).sum()
    assert summary["oof"]["iou"]["glacier"] == pytest.approx(iou)
    assert summary["oof"]["coverage"].startswith("6 of 6 tiles")
    assert "Pooled out-of-fold MCC" in (run / "cv_summary.md").read_text()


def test_all_folds_prints_the_pooled_oof_mcc_with_class_iou_before_and_after_calibration(cv):
    _, run, _ = cv
    oof = json.loads((run / "cv_summary.json").read_text())["oof"]
    lines = (run.parent / "cv.log").read_text().splitlines()
    pooled = next(line for line in lines if line.startswith("pooled out-of-fold MCC"))
    assert pooled.startswith(f"pooled out-of-fold MCC {oof['mcc']:.4f} over 6 of 6 tiles")
    if oof["rule"].startswith("not kept"):  # the guard's line, and the after figures are the before
        rejected = next(line for line in lines if line.startswith("decision rule not kept"))
        assert f"below the plain argmax's {oof['mcc']:.4f}" in rejected
        assert oof["calibrated_mcc"] == oof["mcc"] and oof["calibrated_iou"] == oof["iou"]
        calibrated = pooled
    else:
        calibrated = next(line for line in lines if line.startswith("calibrated out-of-fold MCC"))
        assert calibrated.startswith(
            f"calibrated out-of-fold MCC {oof['calibrated_mcc']:.4f} (cross-fitted {oof['cross_fitted_mcc']:.4f})"
        )
    for line, iou in ((pooled, oof["iou"]), (calibrated, oof["calibrated_iou"])):
        for name in CLASS_NAMES:
            value = "-" if iou.get(name) is None else f"{iou[name]:.3f}"
            assert f"{name} {value}" in line, (name, line)


def test_oof_without_tta_reproduces_the_folds_validation(cv, tmp_path):
    """The best model's validation MCC, recomputed from its OOF written without TTA. Within
    float16 rounding: prepared format 2 stores standardised float16 values, which validation
    rescales in one step and the OOF decodes to raw values that it normalises as predict does
    (a pixel near a tie may flip); reading the stored values as raw ones scored -0.10 here."""
    _, run, _ = cv
    folder = RunFolder(run / "fold_0")
    cfg = load_config(folder.path / "config.yaml").updated(**{"oof.tta": "none"})
    copy = RunFolder(tmp_path / "fold_0")
    copy.path.mkdir()
    shutil.copytree(folder.best, copy.best)
    oof = write_oof(copy, cfg)
    preds = np.asarray(oof.probabilities()).argmax(axis=1)
    labels = np.asarray(oof.labels())
    valid = labels != IGNORE_INDEX
    # Not to the last digit: validation reads the stored float16 z-values directly, the OOF
    # (like predict) takes raw values back from them and normalises again, and float32
    # rounding there flips a few near-tied pixels of this barely trained model.
    assert matthews_corrcoef(labels[valid], preds[valid]) == pytest.approx(
        folder.model_metrics()["mcc"], abs=1e-3
    )


def test_calibration_goes_into_the_summary_and_every_fold_model(cv):
    _, run, _ = cv
    summary = json.loads((run / "cv_summary.json").read_text())
    calibration = summary["calibration"]
    assert calibration["fitted"]["kind"] == "single model" and calibration["fitted"]["oof_tiles"] == 6
    assert summary["oof"]["calibrated_mcc"] >= summary["oof"]["mcc"]
    assert summary["oof"]["cross_fitted_mcc"] is not None
    for fold in range(FOLDS):
        assert ModelFolder(run / f"fold_{fold}" / "best").meta.calibration == calibration


def test_resume_does_not_recompute_finished_folds_oof(cv):
    from tests.conftest import run_cli

    _, run, args = cv
    stamps = {k: (run / f"fold_{k}" / "oof" / "probabilities.npy").stat().st_mtime_ns for k in range(FOLDS)}
    shutil.rmtree(run / "fold_1" / "oof")  # as if the session ended between training and OOF
    assert run_cli(*args, "--resume", "latest") == 0
    assert (run / "fold_0" / "oof" / "probabilities.npy").stat().st_mtime_ns == stamps[0]
    assert (run / "fold_2" / "oof" / "probabilities.npy").stat().st_mtime_ns == stamps[2]
    assert RunFolder(run / "fold_1").oof.exists()


def test_all_data_trains_for_the_length_cv_chose_with_its_calibration(cv, tmp_path, cli):
    prep, run, _ = cv
    final = tmp_path / "final"
    # No samples_per_epoch: an epoch is every training tile (4 in a CV fold, 6 on all data).
    args = tiny_run("finetune", prep, final, "--set", "training.sampler.samples_per_epoch=null")
    assert cli(*args, "--all-data", "--from-cv", run) == 0
    best_epochs = [RunFolder(run / f"fold_{k}").model_metrics()["epoch"] for k in range(FOLDS)]
    expected = max(1, round(statistics.median(e * 16 for e in best_epochs) / 6))  # CV folds drew 16 per epoch
    result = RunFolder(final).result()
    assert result.epochs_run == expected
    config = RunFolder(final).config()
    assert config["data"]["use_all_for_training"] is True and config["training"]["epochs"] == expected
    carried = ModelFolder(final / "best").meta.calibration
    summary = json.loads((run / "cv_summary.json").read_text())
    assert carried["log_bias"] == summary["calibration"]["log_bias"]
    assert carried["fitted"]["carried_from"] == str(run)


def test_all_data_needs_a_cross_validation(cv, tmp_path, cli, capsys):
    prep, run, _ = cv
    base = ["finetune", "--config", "tiny", "--data", prep, "--out", tmp_path / "x", "--all-data"]
    assert_clean_failure(cli, capsys, base, culprit="--from-cv", inputs=[run])
    assert_clean_failure(
        cli, capsys, [*base, "--from-cv", run / "fold_0"], culprit="cv_summary.json", inputs=[run]
    )
    assert_clean_failure(cli, capsys, [*base, "--from-cv", run, "--fold", "1"], culprit="exclude each other")
    assert not (tmp_path / "x").exists()
