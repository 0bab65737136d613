"""Push as you go, restore what is missing (glacier/hub/sync.py), in-process against the fake
Hub (tests/hub_server.py): each fold pushed when it returns, a stopped one with its state,
a fresh machine restores them and finishes exactly where an uninterrupted run ends.

The same story through the phase scripts, with the process group killed, is in
tests/test_scripts_sessions.py.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file
from test_hub import _use_cache, hub  # noqa: F401  (the fake-Hub fixture)
from training_data import prepared_competition

from glacier.artifacts.run import RunFolder
from glacier.config import load_config
from glacier.errors import HubError
from glacier.training import loop as loop_module
from glacier.training.step import train_step
from glacier.training.workflows import finetune

SETTINGS = ["training.sampler.samples_per_epoch=16", "training.batch_size=4"]


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("prep"), n_images=6, folds=2)


def config(prep, out):
    return load_config("tiny", SETTINGS, data=prep, out=out, epochs=2)


@pytest.fixture(scope="module")
def reference(prep, tmp_path_factory):
    """Both folds uninterrupted, no Hub."""
    out = tmp_path_factory.mktemp("reference") / "cv"
    cv = finetune(config(prep, out), all_folds=True)
    assert cv.finished
    return out


def sigterm_at_step(monkeypatch, n: int) -> None:
    real_step, calls = loop_module.train_step, [0]

    def step(*args, **kwargs):
        out = real_step(*args, **kwargs)
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(loop_module, "train_step", step)


def count_fits(monkeypatch) -> list[str]:
    from glacier.training import runs

    real_fit, fitted = runs.fit, []

    def fit(cfg, **kwargs):
        fitted.append(cfg.name)
        return real_fit(cfg, **kwargs)

    monkeypatch.setattr(runs, "fit", fit)
    return fitted


def model_weights(model_dir) -> dict[str, torch.Tensor]:
    return {
        f"{f.stem}.{k}": v
        for f in sorted(model_dir.glob("*.safetensors"))
        for k, v in load_file(str(f)).items()
    }


def assert_same_fold_weights(a, b) -> None:
    """The best model of both folds (what the CV summary and ensembles use), and the last
    model of the fold that was resumed (a restored finished fold brings its best only)."""
    for model in ("fold_0/best", "fold_1/best", "fold_1/last"):
        wa, wb = model_weights(a / model), model_weights(b / model)
        assert wa.keys() == wb.keys() and wa
        assert all(torch.equal(wa[k], wb[k]) for k in wa), model


def test_folds_pushed_as_they_go_restored_on_a_fresh_machine_and_finished_exactly(
    hub,  # noqa: F811
    prep,
    reference,
    tmp_path,
    monkeypatch,
    capsys,
):
    # Session 1: fold 0 finishes (2 epochs x 4 steps), SIGTERM at fold 1's 6th step.
    first = tmp_path / "session1" / "cv"
    sigterm_at_step(monkeypatch, 8 + 6)
    cv = finetune(config(prep, first), all_folds=True, push_to_hub="alice/cv")
    assert not cv.finished and cv.folds[1].stopped_reason == "SIGTERM"
    out = capsys.readouterr().out
    assert "fold 0: pushed to alice/cv@finetune-fold_0 (finished)" in out
    assert "fold 1: pushed to alice/cv@finetune-fold_1 (with its training state)" in out

    fold_0 = hub.files("alice/cv", "finetune-fold_0")
    assert {"model.safetensors", "boundary_head.safetensors", "config.json", "README.md"} <= set(fold_0)
    assert {"result.json", "metrics.csv", "config.yaml", "config_history.jsonl"} <= set(fold_0)
    assert any(p.startswith("oof/") for p in fold_0)  # the calibration needs them
    assert not any(p.startswith("states/") for p in fold_0)
    assert json.loads(fold_0["result.json"])["stopped_reason"] == "completed"
    fold_1 = hub.files("alice/cv", "finetune-fold_1")
    assert "states/state_000006/trainer_state.json" in fold_1
    assert json.loads(fold_1["result.json"])["stopped_reason"] == "SIGTERM"
    assert "training states only" in fold_1["README.md"].decode()

    # Session 2: another machine (empty folder, empty Hub cache) resumes the phase.
    monkeypatch.setattr(loop_module, "train_step", train_step)
    _use_cache(monkeypatch, tmp_path / "cache2")
    second = tmp_path / "session2" / "cv"
    fitted = count_fits(monkeypatch)
    cv = finetune(config(prep, second), all_folds=True, resume="latest", push_to_hub="alice/cv")
    assert cv.finished
    out = capsys.readouterr().out
    assert "fold 0: restored from alice/cv@finetune-fold_0 (completed after 2 epoch(s))" in out
    assert "fold 0: already finished" in out
    assert (
        "fold 1: restored from alice/cv@finetune-fold_1 (SIGTERM after 1 epoch(s); continues from state_000006)"
        in out
    )
    assert "resumed from" in out and "state_000006 (epoch 1, batch 2)" in out
    assert fitted == ["tiny_fold1"]  # fold 0 was not trained again
    # The restored result names this machine's folders, not the first one's.
    assert RunFolder(second / "fold_0").result().best_dir == second / "fold_0" / "best"
    restored_oof = sorted(
        p.relative_to(second) for p in (second / "fold_0" / "oof").rglob("*") if p.is_file()
    )
    assert restored_oof == sorted(
        p.relative_to(first) for p in (first / "fold_0" / "oof").rglob("*") if p.is_file()
    )

    # Equal to the uninterrupted run: every weight of both folds, and the CV summary.
    assert_same_fold_weights(reference, second)
    summary = json.loads((second / "cv_summary.json").read_text())
    expected = json.loads((reference / "cv_summary.json").read_text())
    assert summary["mean"] == expected["mean"] and summary["std"] == expected["std"]
    assert [f["mcc"] for f in summary["folds"]] == [f["mcc"] for f in expected["folds"]]

    # The finished fold 1 replaced its state on the Hub; main holds the best fold's model.
    fold_1 = hub.files("alice/cv", "finetune-fold_1")
    assert not any(p.startswith("states/") for p in fold_1)
    assert json.loads(fold_1["result.json"])["stopped_reason"] == "completed"
    assert "training states only" not in fold_1["README.md"].decode()
    assert "model.safetensors" in hub.files("alice/cv", "main")


def test_a_finished_run_is_not_pushed_twice_and_a_failed_push_is_retried(
    hub,  # noqa: F811
    prep,
    tmp_path,
    capsys,
):
    run = tmp_path / "ft"
    cfg = load_config("tiny", SETTINGS, data=prep, out=run, epochs=1)
    hub.fail("commit", status=500)
    result = finetune(cfg, push_to_hub="alice/one")
    assert result.finished  # a failed push does not stop training
    assert "not pushed" in capsys.readouterr().out and "main" not in _branches_with_model(hub, "alice/one")
    commits = hub.count("POST", r"/commit/")

    finetune(cfg, resume="latest", push_to_hub="alice/one")  # skipped as finished, pushed now
    assert "pushed to alice/one@main (finished)" in capsys.readouterr().out
    assert hub.count("POST", r"/commit/") == commits + 1
    finetune(cfg, resume="latest", push_to_hub="alice/one")  # the branch holds it: no commit
    assert hub.count("POST", r"/commit/") == commits + 1


def _branches_with_model(hub, repo_id):  # noqa: F811
    repo = hub.repos[repo_id]
    return [b for b, c in repo.branches.items() if "model.safetensors" in repo.commits[c]]


def test_an_early_stopped_run_restores_as_finished(hub, prep, tmp_path, monkeypatch):  # noqa: F811
    from glacier.hub.sync import push_run, restore_run

    run = RunFolder(tmp_path / "ft")
    result = finetune(load_config("tiny", SETTINGS, data=prep, out=run.path, epochs=1))
    early = type(result)(result.out, result.best_dir, result.best_metrics, 1, "early_stopping")
    run.write_result(early)  # as fit writes it when patience runs out
    push_run(run, "alice/early", "finetune-fold_0", early, private=True, label="fold 0")

    _use_cache(monkeypatch, tmp_path / "cache2")
    restored = restore_run("alice/early", "finetune-fold_0", tmp_path / "elsewhere")
    assert restored.stopped_reason == "early_stopping" and restored.finished
    assert RunFolder(tmp_path / "elsewhere").finished_result() is not None  # skipped on resume
    assert restore_run("alice/early", "finetune-fold_1", tmp_path / "none") is None
    assert not (tmp_path / "none").exists()


def test_a_restore_that_cannot_reach_the_hub_stops_before_training(hub, prep, tmp_path, capsys):  # noqa: F811
    cfg = config(prep, tmp_path / "cv")
    hub.fail("tree", status=503, times=10)
    with pytest.raises(HubError, match="restore branch 'finetune-fold_0'.*HTTP 503"):
        finetune(cfg, all_folds=True, resume="latest", push_to_hub="alice/down")
    assert not (tmp_path / "cv" / "fold_0").exists()


def test_two_processes_push_and_restore_without_waiting_for_each_other(hub, prep, tmp_path):  # noqa: F811
    """Only the main process talks to the Hub; the other waits for the restore and goes
    on while the main one pushes. Session 1 trains both folds, session 2 (a fresh folder
    and cache) restores and skips them."""
    from test_multiprocess_training import launch

    def phase(out, cache):
        env = {**hub.env, "HF_HUB_CACHE": str(cache)}
        argv = [
            "-m", "glacier", "finetune", "--config", "tiny", "--data", str(prep), "--out", str(out),
            "--all-folds", "--epochs", "1", "--resume", "latest", "--push-to-hub", "alice/two",
            *[x for s in SETTINGS for x in ("--set", s)],
        ]  # fmt: skip
        done = launch(*argv, env=env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    first = phase(tmp_path / "one", tmp_path / "cache1")
    assert "2 process(es)" in first and first.count("pushed to alice/two@finetune-fold_") == 2, first
    for fold in (0, 1):
        result = json.loads(hub.files("alice/two", f"finetune-fold_{fold}")["result.json"])
        assert result["stopped_reason"] == "completed"

    second = phase(tmp_path / "two", tmp_path / "cache2")
    assert second.count("restored from alice/two@finetune-fold_") == 2  # by the main process only
    assert second.count("already finished") == 2 and "training tiny_fold" not in second
    assert (tmp_path / "two" / "cv_summary.json").is_file()
