"""The disk budget is computed, and the computation matches what the writers put on disk."""

from __future__ import annotations

import numpy as np
import pytest
from training_data import FAST, prepared_competition

from glacier.config import load_config
from glacier.data import prepared_format as fmt
from glacier.data.prepare import PrepareOptions, prepare_competition
from glacier.disk_budget import format_budget, measure_model, run_folder_bytes, workflow_budget


def _array_bytes(path) -> int:
    array = np.load(path, mmap_mode="r")
    return array.size * array.itemsize


@pytest.mark.parametrize("version", [1, 2])
def test_prepared_bytes_are_the_arrays_written(tmp_path, version):
    from data_factory import make_competition

    train = make_competition(tmp_path / "src", n_images=3, size=(40, 40))
    summary = prepare_competition(
        train,
        tmp_path / "prep",
        PrepareOptions(tile_size=32, num_folds=3, format_version=version),
        progress=False,
    )
    written = sum(_array_bytes(tmp_path / "prep" / n) for n in (fmt.IMAGES, fmt.MASKS))
    assert written == fmt.prepared_bytes(summary.num_tiles, 5, 32, version)
    assert fmt.prepared_bytes(10, 5, 512, 1) == 2 * fmt.prepared_bytes(10, 5, 512, 2) - 10 * 512 * 512


def test_run_folder_estimate_matches_a_real_run(tmp_path, cli):
    prep = prepared_competition(tmp_path / "data", n_images=6, folds=2)
    run = tmp_path / "run"
    assert cli("finetune", "--config", "tiny", "--data", prep, "--out", run, "--epochs", "2", *FAST) == 0
    actual = sum(
        p.stat().st_size for d in ("best", "last", "states") for p in (run / d).rglob("*") if p.is_file()
    )
    cfg = load_config("tiny")
    estimate = run_folder_bytes(cfg, measure_model(cfg))
    assert estimate == pytest.approx(actual, rel=0.05), (estimate, actual)


def test_workflow_budget_lists_both_disks(monkeypatch):
    cfg = load_config("tiny")
    items = workflow_budget(cfg, cfg, hkh_tiles=100, competition_tiles=25, folds=5, seeds=3)
    assert [i.disk for i in items].count("scratch") == 2 and items[0].bytes == fmt.prepared_bytes(100, 5, 512)
    text = format_budget(items)
    assert "| **scratch** | **total** |" in text and "| **working** | **total** |" in text
    assert "15 model folders" in text and "runs/final/runs: 3 all-data runs" in text
    assert "model.pth: the final ensemble's 3 members" in text  # what 05_submission.sh ships
