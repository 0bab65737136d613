"""`glacier demo`: the whole workflow on sample data, at its smallest size, and its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_predict import STATS, tiny_model, write_scenes

from glacier import demo
from glacier.artifacts.run import RunResult
from glacier.demo import SIZES, run_demo
from glacier.errors import GlacierError
from glacier.report import DemoReport, StageTiming
from glacier.training.cv import mean_and_std, summarize_folds


def cv_summary(fold_mcc: dict[int, float]) -> dict:
    """The summary the cross-validation computes from folds with these best MCCs."""
    results = {
        k: RunResult(
            Path(f"fold_{k}"), Path(f"fold_{k}/best"), {"mcc": mcc, "iou": {}, "miou": mcc}, 1, "completed"
        )
        for k, mcc in fold_mcc.items()
    }
    return summarize_folds(results)


def test_report_formats_only_measured_figures(tmp_path):
    results = {
        "pretrain": {"mcc": 0.5},
        "cv_pretrained": {"summary": cv_summary({0: 0.6, 1: 0.8})},
        "cv_scratch": {"summary": cv_summary({0: 0.2, 1: 0.4})},
        "test": {"ensemble": {"name": "ensemble", "mcc": 0.7, "iou": {"glacier": 0.5}}},
        "outputs": {"ensemble": str(tmp_path / "ensemble")},
    }
    report = DemoReport.from_results(
        results,
        size=dict(name="x", images=4),
        seed=0,
        out=tmp_path,
        timings=[StageTiming("a", 1.5)],
        total_seconds=2,
    )
    text = report.markdown()
    assert "| 0 | 0.600 | 0.200 |" in text
    assert "0.700 +/- 0.141" in text  # the CV's own mean and sample std of 0.6, 0.8
    assert "+0.400" in text  # pretrained vs scratch
    assert "n/a" in text  # the missing debris IoU is not invented
    assert "Submission" not in text  # no submission stage ran
    assert report.failures == []
    data = report.to_dict()
    assert data["cv_pretrained"]["mean_mcc"] == pytest.approx(0.7)
    json.dumps(data)


def test_fold_mean_and_sample_std():
    assert mean_and_std([0.6, 0.8]) == (pytest.approx(0.7), pytest.approx(0.1414, abs=1e-4))
    assert mean_and_std([0.5, None]) == (0.5, 0.0)  # one fold: no spread
    assert mean_and_std([None]) == (None, None)


@pytest.fixture
def broken_solution(tmp_path, monkeypatch):
    """The exporter writes a solution.py whose masks shift every pixel to the next class."""
    from glacier.submission import export

    source = export.TEMPLATE_PATH.read_text()
    correct = "return {tid: mask for tid, _, mask in predict_tiles(imagepath, model_path)}"
    assert correct in source
    broken = tmp_path / "broken_template.py"
    wrong = "return {tid: ((mask.astype(np.int32) + 85) % 340).astype(np.uint8) for tid, _, mask in predict_tiles(imagepath, model_path)}"
    broken.write_text(source.replace(correct, wrong))
    monkeypatch.setattr(export, "TEMPLATE_PATH", broken)


def fake_upstream_stages(ctx: demo.DemoContext) -> str:
    """Test scaffolding in place of training: a model folder and two test scenes."""
    from glacier.models import save_model_folder

    save_model_folder(tiny_model(0), ctx.paths.ensemble, normalization=STATS)
    write_scenes(ctx.paths.competition / "Test", {"img001.tif": (64, 64), "img002.tif": (48, 40)})
    return "model and test scenes written"


def test_a_failed_self_check_shows_as_failed_and_exits_1(tmp_path, cli, capsys, monkeypatch, broken_solution):
    monkeypatch.setattr(
        demo, "STAGES", [("upstream", fake_upstream_stages), ("export submission", demo.stage_submission)]
    )
    out = tmp_path / "demo"
    assert cli("demo", "--out", out, "--size", "smoke") == 1
    assert "submission self-check failed" in capsys.readouterr().err
    data = json.loads((out / "report.json").read_text())
    assert data["submission"]["passed"] is False
    assert "self-check failed" in data["submission"]["summary"]
    assert (
        "Self-check FAILED: self-check failed: solution.py's masks differ" in (out / "report.md").read_text()
    )
    assert not (out / "submission" / "model.pth").exists()


def test_demo_refuses_a_non_empty_folder(tmp_path, cli):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(GlacierError, match="not empty"):
        run_demo(tmp_path, size="smoke")
    assert cli("demo", "--out", tmp_path, "--size", "smoke") == 1
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_unknown_size_is_a_clear_error(tmp_path):
    with pytest.raises(GlacierError, match="smoke"):
        run_demo(tmp_path / "d", size="huge")


@pytest.mark.parametrize("field", ["test_images", "extra_seeds", "finetune_epochs"])
def test_a_size_override_below_one_is_refused_before_anything_is_written(tmp_path, field):
    with pytest.raises(GlacierError, match=f"{field} must be at least 1, got 0"):
        run_demo(tmp_path / "d", size="smoke", **{field: 0})
    assert not (tmp_path / "d").exists()


def test_the_cli_passes_finetune_epochs_on_and_refuses_zero_without_a_traceback(tmp_path, cli, capsys):
    assert cli("demo", "--out", tmp_path / "d", "--size", "smoke", "--finetune-epochs", "0") == 1
    assert "finetune_epochs must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_a_bad_config_override_is_refused_before_anything_is_written(tmp_path):
    from glacier.errors import ConfigError

    with pytest.raises(ConfigError, match="checkpoints"):
        run_demo(tmp_path / "d", size="smoke", config_overrides=["checkpoints.select=never"])
    assert not (tmp_path / "d").exists()


def test_config_overrides_reach_every_preset_the_demo_loads_and_its_sizes_still_win(tmp_path):
    from glacier.demo import DemoContext, DemoPaths

    size = SIZES["smoke"]
    changes = ("checkpoints.select=best", "data.crop_size=32", "training.loss.mcc_weight=0")
    ctx = DemoContext(size, DemoPaths(tmp_path), 0, None, changes)
    for preset in (size.pretrain_config, size.finetune_config):
        cfg = ctx.config(preset)
        assert cfg.checkpoints.select == "best" and cfg.training.loss.mcc_weight == 0
        assert cfg.data.crop_size == size.crop_size  # the demo's size, not the override
    assert DemoContext(size, DemoPaths(tmp_path), 0, None).config("tiny").checkpoints.select == "last"


def _check_report(out, size_name):
    data = json.loads((out / "report.json").read_text())
    assert (out / "report.md").read_text().startswith("# glacier demo report")
    assert data["size"]["name"] == size_name
    # The report names the recipe both stages trained with, read from their configs.
    size = SIZES[size_name]
    assert data["recipe"]["pretrain"].startswith(f"`{size.pretrain_config}`: ")
    assert data["recipe"]["finetune"].startswith(f"`{size.finetune_config}`: ")
    assert f"{size.finetune_epochs} epochs" in data["recipe"]["finetune"]
    assert f"from {data['outputs']['pretrained model']} (head re-initialised)" in data["recipe"]["finetune"]
    assert f"crops of {size.crop_size} px" in data["recipe"]["finetune"]
    assert "## Recipe" in (out / "report.md").read_text()
    for key in ("cv_pretrained", "cv_scratch"):
        folds = data[key]["folds"]
        assert sorted(folds) == ["0", "1", "2", "3", "4"], f"{key}: all 5 folds complete"
        assert all(-1 <= v <= 1 for v in folds.values())
        assert -1 <= data[key]["mean_mcc"] <= 1
    for key in ("ensemble", "best_single", "all_data"):
        assert -1 <= data["test"][key]["mcc"] <= 1
    # The final models: one per seed the ensemble's OOF fit weighed, carrying its rule.
    fitted = json.loads((out / "ensemble" / "ensemble.json").read_text())["calibration"]["fitted"]
    kept = sorted(u for u, w in fitted["unit_weights"].items() if w > 0)
    final = json.loads((out / "all_data_ensemble" / "ensemble.json").read_text())
    assert sorted(m["name"] for m in final["members"]) == [f"{u}_all" for u in kept]
    assert final["calibration"]["fitted"]["carried_from"] == str(out / "ensemble")
    # Shipped as they are, or as their one weight soup where the OOF fit chose the soup.
    submission = data["submission"]
    if final["calibration"]["combine"] == "soup":
        assert submission["members"] == ["soup"], "a soup rule ships the one averaged model"
        assert "weight soup" in submission["summary"]
    shipped = submission["souped"] or submission["members"]
    assert sorted(shipped) == [f"{u}_all" for u in kept], "the final models are shipped"
    assert data["submission"]["passed"] is True
    if SIZES[size_name].submission_timing:
        assert data["submission"]["projected_seconds"] > 0
        assert "512 px" in data["submission"]["projection_basis"]
    else:  # the smoke size skips the 512 px timing run, and says so
        assert data["submission"]["projected_seconds"] is None
        assert "timing_tile_size" not in data["submission"]
    for path in data["outputs"].values():
        assert Path(path).exists(), path
    stages = [t["stage"] for t in data["timings"]]
    assert stages[0] == "sample data" and "export submission" in stages
    assert (out / "submission" / "solution.py").is_file() and (out / "submission" / "model.pth").is_file()
    assert list((out / "predictions" / "ensemble").glob("*.tif"))
    assert (out / "evaluation" / "ensemble" / "confusion.png").is_file()
    pictures = [v for k, v in data["outputs"].items() if k.startswith(("overlay PNGs", "confusion", "masks"))]
    assert len(pictures) == 3 and all("all_data" in Path(p).parts for p in pictures), "pictures of what ships"
    assert len(json.loads((out / "ensemble" / "ensemble.json").read_text())["members"]) == 10
    return data


def test_smoke_demo_runs_every_stage(tmp_path, cli):
    out = tmp_path / "demo"
    assert cli("demo", "--out", out, "--size", "smoke") == 0
    _check_report(out, "smoke")


@pytest.mark.slow
def test_default_demo_models_learn(tmp_path):
    out = tmp_path / "demo"
    report = run_demo(out)
    data = _check_report(out, "default")
    assert data["cv_pretrained"]["mean_mcc"] > 0.2, "fine-tuned models should clearly beat chance"
    assert data["test"]["ensemble"]["mcc"] > 0.2
    assert report.total_seconds < SIZES["default"].images * 60  # a sanity bound, not the 10-minute goal
