"""One session deadline: the set-up records the session start, every run measures
``training.max_hours`` from it and stops before the session's end minus its margin.

Off a recorded session (no GLACIER_SESSION_FILE) nothing changes: test_stop_poll.py and
test_resume.py cover a run's own budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from training_data import prepared_competition

from glacier.config import load_config
from glacier.errors import GlacierError
from glacier.session import SESSION_ENV, Session, current_session, machine_start_time, record_session
from glacier.training.checkpoints import StopPolicy, session_has_room
from glacier.training.signals import Deadline
from tests.conftest import REPO_ROOT

HOUR = 3600.0


def test_a_rerun_in_the_same_session_keeps_the_start(tmp_path):
    path = tmp_path / "session.json"
    first, kept = record_session(path, now=1000.0, machine_started_at=900.0)
    assert not kept and first.started_at == 1000.0
    again, kept = record_session(path, margin_minutes=45, now=1000.0 + 2 * HOUR, machine_started_at=900.0)
    assert kept and again.started_at == 1000.0 and again.margin_minutes == 45
    assert Session.read(path) == again


def test_a_file_of_an_earlier_session_is_replaced(tmp_path):
    path = tmp_path / "session.json"
    record_session(path, now=1000.0, machine_started_at=900.0)
    # A new container (session) started at 5000: the file was written before it.
    new, kept = record_session(path, now=5100.0, machine_started_at=5000.0)
    assert not kept and new.started_at == 5100.0
    # No machine start known: a record older than a session can last is stale too.
    old, kept = record_session(path, now=5100.0 + 13 * HOUR, machine_started_at=None)
    assert not kept and old.started_at == 5100.0 + 13 * HOUR
    path.write_text("{not json")
    fresh, kept = record_session(path, now=9.0e9, machine_started_at=1.0)
    assert not kept and fresh.started_at == 9.0e9


def test_machine_start_is_pid_1s_start_and_in_the_past():
    started = machine_start_time()
    if started is None:
        pytest.skip("/proc does not tell PID 1's start here")
    with open("/proc/uptime") as handle:
        booted = time.time() - float(handle.read().split()[0])
    assert booted - 60 <= started <= time.time()  # at or after boot (a container: later)


def test_training_end_is_max_hours_from_the_start_and_keeps_the_margin():
    session = Session(started_at=0.0, limit_hours=12.0, margin_minutes=30.0)
    assert session.training_end(11.0) == 11 * HOUR
    assert session.training_end(None) == 11.5 * HOUR  # no max_hours: the session's end still holds
    assert session.training_end(20.0) == 11.5 * HOUR
    assert Session(0.0, limit_hours=None).training_end(None) is None


def test_deadline_counts_from_the_session_start_not_from_the_run():
    session = Session(started_at=0.0, limit_hours=12.0, margin_minutes=30.0)
    now = [0.0]
    # The sixth run of the session starts 10.5 hours in: half an hour of max_hours 11 is left.
    deadline = Deadline(11.0, clock=lambda: now[0], session=session, wall_clock=lambda: 10.5 * HOUR)
    assert deadline.remaining == pytest.approx(0.5 * HOUR)
    deadline.record_epoch(20 * 60)
    now[0] = 20 * 60.0
    assert not deadline.next_epoch_fits()  # 10 minutes left, epochs take 20
    alone = Deadline(11.0, clock=lambda: now[0])  # without a session: 11 hours of its own
    assert alone.remaining == pytest.approx(11 * HOUR)


class OneProcess:
    num_processes, device, sync_gradients = 1, "cpu", True

    def __init__(self) -> None:
        self.printed: list[str] = []

    def print(self, message: str) -> None:
        self.printed.append(message)


def test_stop_policy_reads_the_session_named_in_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "session.json"
    record_session(path, now=time.time() - 10.5 * HOUR, machine_started_at=0.0)
    monkeypatch.setenv(SESSION_ENV, str(path))
    accelerator = OneProcess()
    now = [0.0]
    cfg = load_config("tiny").updated(**{"training.epochs": 5, "training.max_hours": 11.0})
    policy = StopPolicy(cfg, accelerator, clock=lambda: now[0])
    assert "this run stops by" in accelerator.printed[0] and "0.50 h left" in accelerator.printed[0]
    with policy:
        now[0] = 10 * 60.0  # a 10-minute epoch: 20 minutes left, a second one fits
        assert policy.end_epoch(0, None).stop is None
        now[0] = 25 * 60.0  # a 15-minute epoch: 5 minutes left, a third would not fit
        end = policy.end_epoch(1, None)
    assert end.stop == "max_hours" and end.save_state
    assert "the session's time: the next epoch would not fit" in accelerator.printed[-1]

    monkeypatch.delenv(SESSION_ENV)
    quiet = OneProcess()
    StopPolicy(cfg, quiet)
    assert quiet.printed == []  # off a session nothing is said, nothing changes


def test_a_session_file_that_is_not_one_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "session.json"
    path.write_text(json.dumps({"format": "something-else"}))
    monkeypatch.setenv(SESSION_ENV, str(path))
    with pytest.raises(GlacierError, match="not a readable session record.*kaggle_setup.sh"):
        current_session()
    monkeypatch.setenv(SESSION_ENV, str(tmp_path / "absent.json"))
    assert current_session() is None


def test_session_has_room_for_a_run_only_if_its_longest_epoch_fits(tmp_path):
    cfg = load_config("tiny").updated(**{"training.max_hours": 11.0})
    from glacier.artifacts.run import RunFolder

    earlier = RunFolder(tmp_path / "fold_0")
    earlier.open_metrics(resume_after_epoch=None)
    earlier.append_metrics({"epoch": 1, "train_loss": 1.0, "lr": 1e-3, "seconds": 1200.0, "images_per_s": 1})
    now = time.time()
    plenty = Session(started_at=now - 1 * HOUR)
    late = Session(started_at=now - 10.75 * HOUR)  # 15 minutes left of max_hours 11
    assert session_has_room(cfg, [earlier], session=plenty)
    assert not session_has_room(cfg, [earlier], session=late)  # a 20-minute epoch would not fit
    assert session_has_room(cfg, [RunFolder(tmp_path / "new")], session=late)  # no epoch known yet
    assert session_has_room(cfg, [earlier])  # no session recorded: always


def test_the_record_needs_only_the_standard_library(tmp_path):
    """The set-up records the start before glacier's dependencies are installed."""
    path = tmp_path / "session.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-S", "-m", "glacier.session", "record", str(path), "--margin-minutes", "40"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "recorded now" in proc.stdout and "runs stop 40 min before" in proc.stdout
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert "kept from earlier in this session" in again.stdout
    bad = subprocess.run([*cmd[:-2], "--margin-minutes", "-1"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("data"), n_images=6, folds=2)


def test_runs_of_a_late_session_stop_in_time_and_the_next_is_not_started(prep, tmp_path, monkeypatch):
    """fit and the fold sequence, for real: two seconds before max_hours 11 is reached."""
    from glacier.artifacts.run import RunFolder
    from glacier.training import run_cross_validation

    path = tmp_path / "session.json"
    record_session(path, now=time.time() - 11 * HOUR + 2.0, machine_started_at=0.0)
    monkeypatch.setenv(SESSION_ENV, str(path))
    cfg = load_config("tiny", ["training.sampler.samples_per_epoch=16", "training.max_hours=11"], data=prep)
    cfg = cfg.updated(**{"training.epochs": 20})
    printed: list[str] = []
    first = run_cross_validation(cfg, out=tmp_path / "cv", print_fn=printed.append)
    fold_0 = first.folds[0]
    # The rule is asked after each epoch: the run stops, state saved, long before 20 epochs.
    assert not first.finished and fold_0.stopped_reason == "max_hours" and fold_0.epochs_run < 20
    assert RunFolder(fold_0.out).latest_state() is not None
    rows = RunFolder(fold_0.out).metrics_rows()

    # Resumed later in the same session: no time left, so fold 0 is not even started.
    later = run_cross_validation(cfg, out=tmp_path / "cv", resume="latest", print_fn=printed.append)
    assert not later.finished and later.folds == {}
    assert "fold 0: not started, the session has no time left for it" in printed[-1]
    assert RunFolder(fold_0.out).metrics_rows() == rows
