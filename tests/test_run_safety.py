"""A run folder's safety: its lock, what may change on resume, damaged and unsaveable
states, and the exit status of a stopped run.

Real processes where the point is another process: a second ``glacier finetune`` in a
subprocess holding the lock, ``kill -9``, SIGTERM, and ``accelerate launch`` with 2
processes on CPU.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_checks import assert_clean_failure
from safetensors.torch import load_file
from test_multiprocess_training import launch
from training_data import FAST, prepared_competition

from glacier.artifacts.run import RunFolder
from glacier.config import load_config
from glacier.errors import ConfigError
from glacier.training import fit
from glacier.training.resuming import check_resume
from glacier.training.run_lock import RunLock

TINY = ["finetune", "--config", "tiny", *FAST]


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("data"))


def glacier_process(log: Path, *args) -> subprocess.Popen:
    """``glacier ARGS`` in its own process (this checkout's package, 1 thread), its output in
    the file ``log`` (a pipe nobody reads would fill up and stall it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "glacier", *map(str, args)], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def wait_for(condition, what: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(
                f"{what}: the process ended first ({proc.returncode}): {log.read_text()[-2000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


def lock_holder(run: Path) -> int | None:
    try:
        return json.loads((run / ".lock").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


# ---------------------------------------------------------------------- the lock
def test_a_second_run_is_refused_while_one_trains_and_a_killed_one_leaves_no_lock(
    prep, tmp_path, cli, capsys
):
    run, log = tmp_path / "run", tmp_path / "first.log"
    first = glacier_process(log, *TINY, "--data", prep, "--out", run, "--epochs", "500")
    try:
        wait_for(lambda: lock_holder(run) == first.pid, "the first run takes the lock", first, log)
        line = assert_clean_failure(
            cli, capsys, [*TINY, "--data", prep, "--out", run, "--resume", "latest"],
            culprit=f"process {first.pid} on ", inputs=[prep],
        )  # fmt: skip
        assert "is in use" in line and f"--out {run}" in line  # the holder's command line
        assert first.poll() is None  # the refused run did not disturb the first one
    finally:
        first.kill()  # SIGKILL: no Python clean-up runs; the kernel drops the flock
        first.wait()
    assert (run / ".lock").is_file()  # left behind by the dead holder, but not held
    assert cli(*TINY, "--data", prep, "--out", run, "--resume", "latest", "--epochs", "1") == 0
    assert not (run / ".lock").exists()  # a run that ends removes its lock file


def test_both_processes_of_a_launch_are_refused_without_a_hang(prep, tmp_path):
    run = tmp_path / "run"
    lock = RunLock(RunFolder(run))
    assert lock.acquire() is None
    try:
        done = launch("-m", "glacier", *TINY, "--data", str(prep), "--out", str(run), "--epochs", "1")
    finally:
        lock.release()
    assert done.returncode != 0
    # Rank 0 could not take the lock and rank 1 learned it from the all-reduce: both stop
    # there (one may be ended by the launcher before it prints), none waits forever.
    refused = [line for line in done.stderr.splitlines() if line.startswith("error:") and "is in use" in line]
    assert refused and "Traceback" not in "\n".join(refused), done.stderr[-3000:]
    assert not (run / "config.yaml").exists()


# ---------------------------------------------------------------------- resume settings
def _saved_run(tmp_path: Path, prep: Path, **overrides) -> tuple[RunFolder, object]:
    cfg = load_config("tiny", data=prep, out=tmp_path / "run")
    cfg = cfg.updated(**overrides) if overrides else cfg
    folder = RunFolder(cfg.out)
    folder.write_config(cfg)
    return folder, cfg


def test_allowed_changes_are_returned_and_the_others_listed(prep, tmp_path):
    folder, cfg = _saved_run(tmp_path, prep)
    changed = cfg.updated(**{"training.epochs": 9, "training.max_hours": 2.5, "data.num_workers": 0})
    assert check_resume(folder, changed) == {"training.epochs": (2, 9), "training.max_hours": (None, 2.5)}
    refused = cfg.updated(**{"data.fold": 1, "training.batch_size": 2, "training.optimizer.lr": 1e-4})
    with pytest.raises(ConfigError) as info:
        check_resume(folder, refused)
    message = str(info.value)
    assert "data.fold 0 -> 1" in message and "training.batch_size 4 -> 2" in message
    assert (
        "training.optimizer.lr 0.003 -> 0.0001" in message and "training.epochs" in message
    )  # allowed: listed


def test_the_same_dataset_moved_is_allowed_another_refused(prep, tmp_path):
    folder, cfg = _saved_run(tmp_path, prep)
    moved = tmp_path / "moved"
    shutil.copytree(prep, moved)
    assert check_resume(folder, cfg.updated(**{"data.path": str(moved)})) == {
        "data.path": (str(prep), str(moved))
    }
    other = prepared_competition(tmp_path / "other", folds=2)
    with pytest.raises(ConfigError, match="data.path"):
        check_resume(folder, cfg.updated(**{"data.path": str(other)}))


def test_length_may_change_under_a_cosine_schedule(prep, tmp_path):
    # The schedule falls from its current rate to the new end (tests/test_recipe.py).
    folder, cfg = _saved_run(tmp_path, prep, **{"training.scheduler.name": "cosine"})
    longer = cfg.updated(**{"training.epochs": 3, "training.steps": 40})
    assert check_resume(folder, longer) == {"training.epochs": (2, 3), "training.steps": (None, 40)}


def test_resume_prints_and_records_its_changes(prep, tmp_path, cli, capsys):
    run = tmp_path / "run"
    assert cli(*TINY, "--data", prep, "--out", run, "--epochs", "1") == 0
    capsys.readouterr()
    assert cli(*TINY, "--data", prep, "--out", run, "--epochs", "2", "--resume", "latest") == 0
    assert "resuming with changed settings: training.epochs 1 -> 2" in capsys.readouterr().out
    history = RunFolder(run).history()
    assert [h["resumed_from"] for h in history] == [None, "state_000004"]
    assert [h["changes"] for h in history] == [{}, {"training.epochs": [1, 2]}]
    assert (
        history[0]["dataset"]["name"] == "competition" and len(history[0]["dataset"]["manifest_sha256"]) == 64
    )
    assert RunFolder(run).config()["training"]["epochs"] == 2


def test_a_cross_validation_never_keeps_folds_trained_on_other_data(prep, tmp_path, cli, capsys):
    run = tmp_path / "cv"
    assert cli(*TINY, "--data", prep, "--out", run, "--all-folds", "--epochs", "1") == 0
    other = tmp_path / "other"  # another prepared dataset (its manifest differs)
    shutil.copytree(prep, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["created_by"] = "another preprocess"
    (other / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert_clean_failure(
        cli, capsys, [*TINY, "--data", other, "--out", run, "--all-folds", "--epochs", "1", "--resume", "latest"],
        culprit="(fold 0)", inputs=[run, other],
    )  # fmt: skip


def test_a_run_restored_from_the_hub_is_checked_against_its_best_model(prep, tmp_path, cli):
    run = tmp_path / "run"
    assert cli(*TINY, "--data", prep, "--out", run, "--epochs", "1") == 0
    restored = tmp_path / "restored"  # what scripts/resume.sh rebuilds: best/, states/, metrics.csv
    shutil.copytree(run / "best", restored / "best")
    shutil.copytree(run / "states", restored / "states")
    cfg = _cfg(prep, 2, scheduler="cosine").updated(out=str(restored))
    assert check_resume(RunFolder(restored), cfg)["training.epochs"] == (1, 2)  # data.path: same manifest
    other = prepared_competition(tmp_path / "other", folds=2)
    with pytest.raises(ConfigError, match="data.path None"):
        check_resume(RunFolder(restored), cfg.updated(**{"data.path": str(other)}))


# ---------------------------------------------------------------------- damaged states
def _cfg(prep, epochs, scheduler="plateau"):
    # Plateau: "2 epochs, then 3" equals "3 epochs" only for a schedule that does not depend
    # on the run's length (tiny's cosine does).
    overrides = [
        "training.sampler.samples_per_epoch=16",
        "training.batch_size=4",
        f"training.scheduler.name={scheduler}",
    ]
    return load_config("tiny", overrides, data=prep, epochs=epochs)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "last" / "model.safetensors"))


@pytest.fixture(scope="module")
def reference(prep, tmp_path_factory):
    run = tmp_path_factory.mktemp("reference") / "run"
    fit(_cfg(prep, 3), out=run)
    return _weights(run)


def _garble(path: Path) -> None:
    path.write_bytes(b"\x00garbage")


def _truncate(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(100)


@pytest.mark.parametrize(
    ("name", "damage"),
    [("optimizer.bin", _garble), ("trainer_state.json", _garble), ("model.safetensors", _truncate)],
)
def test_a_damaged_latest_state_falls_back_to_the_one_before(prep, reference, tmp_path, capsys, name, damage):
    run = tmp_path / "run"
    fit(_cfg(prep, 2), out=run)
    assert [p.name for p in RunFolder(run).complete_states()] == ["state_000004", "state_000008"]
    damage(run / "states" / "state_000008" / name)
    capsys.readouterr()

    result = fit(_cfg(prep, 3), out=run, resume="latest")
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"state_000008/{name}: damaged" in warnings[0], warnings
    assert "kept as state_000008.damaged" in warnings[0]
    assert result.epochs_run == 3 and (run / "states" / "state_000008.damaged").is_dir()
    ref, got = reference, _weights(run)
    assert all(torch.equal(ref[k], got[k]) for k in ref)  # epochs 2 and 3 redone from state_000004


def test_no_loadable_state_is_one_error(prep, tmp_path, cli, capsys):
    run = tmp_path / "run"
    fit(_cfg(prep, 2), out=run)
    for state in RunFolder(run).complete_states():
        _garble(state / "optimizer.bin")
    capsys.readouterr()
    code = cli("finetune", "--config", "tiny", "--set", "training.sampler.samples_per_epoch=16",
               "--set", "training.scheduler.name=plateau", "--data", prep, "--out", run, "--epochs", "3", "--resume", "latest")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no saved state can be loaded" in errors[0], err
    assert "state_000008/optimizer.bin: damaged" in errors[0]
    assert err.count("warning:") == 2  # one per state tried


def test_a_full_disk_while_saving_a_state_keeps_the_previous_one(prep, tmp_path, cli, capsys, monkeypatch):
    from accelerate import Accelerator

    run, real_save, calls = tmp_path / "run", Accelerator.save_state, []

    def save_on_a_full_disk(self, output_dir=None, **kwargs):
        calls.append(output_dir)
        if len(calls) == 2:  # the second state: part of it written, then the disk is full
            Path(output_dir, "model.safetensors").write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device", str(Path(output_dir, "optimizer.bin")))
        return real_save(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", save_on_a_full_disk)
    line = assert_clean_failure(cli, capsys, [*TINY, "--data", prep, "--out", run, "--epochs", "3"],
                                culprit="no space left on the device while saving state_000008", inputs=[prep])  # fmt: skip
    assert "the previous state state_000004 is kept" in line and "--resume latest" in line
    assert sorted(p.name for p in (run / "states").iterdir()) == ["state_000004"]  # no partial left
    monkeypatch.setattr(Accelerator, "save_state", real_save)
    assert cli(*TINY, "--data", prep, "--out", run, "--epochs", "3", "--resume", "latest") == 0


def test_a_failed_start_removes_what_it_wrote_and_nothing_else(prep, tmp_path, cli):
    made = tmp_path / "new" / "run"
    assert cli(*TINY, "--data", prep, "--out", made, "--set", "data.crop_size=4096") == 1
    assert not (tmp_path / "new").exists()
    given = tmp_path / "given"  # the user's folder, holding the config they train with
    given.mkdir()
    config = given / "config.yaml"
    config.write_text("base: tiny\n")
    assert (
        cli(
            *TINY[:1],
            "--config",
            config,
            *FAST,
            "--data",
            prep,
            "--out",
            given,
            "--set",
            "data.crop_size=4096",
        )
        == 1
    )
    assert sorted(p.name for p in given.iterdir()) == ["config.yaml"]  # not written by this start: kept
    assert config.read_text() == "base: tiny\n"


# ---------------------------------------------------------------------- exit status of a stop
def test_sigterm_exits_3_with_a_state_and_the_resumed_run_exits_0(prep, tmp_path, cli):
    run, log = tmp_path / "run", tmp_path / "run.log"
    proc = glacier_process(log, *TINY, "--data", prep, "--out", run, "--epochs", "500")
    wait_for(lambda: (run / "metrics.csv").is_file(), "the first epoch ends", proc, log)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=180)
    assert proc.returncode == 3, log.read_text()[-2000:]
    assert "stopped (SIGTERM) with a state saved" in log.read_text()
    result = RunFolder(run).result()
    assert result.stopped_reason == "SIGTERM" and RunFolder(run).latest_state() is not None
    assert (
        cli(*TINY, "--data", prep, "--out", run, "--resume", "latest", "--epochs", result.epochs_run + 1) == 0
    )
    assert RunFolder(run).result().stopped_reason == "completed"


def test_max_hours_exits_3_for_one_run_and_for_a_cross_validation(prep, tmp_path, cli, capsys):
    budget = ["--set", "training.max_hours=1e-7"]
    assert cli(*TINY, "--data", prep, "--out", tmp_path / "one", *budget) == 3
    assert cli(*TINY, "--data", prep, "--out", tmp_path / "cv", "--all-folds", *budget) == 3
    assert "stopped (max_hours) with a state saved" in capsys.readouterr().err
    assert not (tmp_path / "cv" / "fold_1").exists()  # the sequence ended at the stopped fold


# ---------------------------------------------------------------------- provenance
def test_model_folders_record_the_dataset_not_its_local_path(prep, tmp_path, cli):
    import hashlib

    from glacier.training.provenance import portable_config

    run = tmp_path / "somewhere" / "private" / "run"
    assert cli(*TINY, "--data", prep, "--out", run, "--epochs", "1") == 0
    text = (run / "best" / "config.json").read_text()
    training = json.loads(text)["_glacier"]["training"]
    assert str(prep) not in text and str(tmp_path) not in text  # pushed with the model: no local paths
    assert training["data"]["path"] is None and training["out"] == "run"
    assert training["provenance"]["dataset"] == {
        "name": "competition",
        "manifest_sha256": hashlib.sha256((prep / "manifest.json").read_bytes()).hexdigest(),
    }
    assert portable_config(load_config("tiny", data=prep, out=run))["data"]["path"] is None  # ensemble.json's
