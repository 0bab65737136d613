"""A Kaggle session ends mid-phase: scripts/03_finetune_cv.sh, killed and rerun on fresh
machines, against the fake Hub (tests/hub_server.py), on CPU.

Three sessions of the same phase, each with its own empty WORK_DIR and Hub cache (a new
Kaggle session starts with an empty /kaggle/working):

1. fold 0 finishes and is pushed; during fold 1 the whole process group gets SIGTERM (the
   session ends): fold 1 stops, saves a state and pushes it.
2. the phase restores fold 0 (not trained again) and fold 1's state and resumes; during
   fold 1 the process group gets SIGKILL: nothing is saved or pushed, so what the Hub holds
   is still session 1's state.
3. the phase restores again and finishes.

The final folds equal an uninterrupted run of the phase: every weight of both folds' best
models and of the resumed fold's last model, and the CV summary. Resuming is exact in fit
(tests/test_resume.py), and the state a resumed run continues from is the one pushed, so
"equal" can mean bit for bit.

Marked slow (four `accelerate launch` phases, minutes on a shared CPU): run it with
``pytest -m slow tests/test_scripts_sessions.py``. tests/test_hub_sync.py tells the same
story in-process, in the default run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_hub import _save_model, hub  # noqa: F401  (the fake-Hub fixture)
from training_data import prepared_competition

from glacier.artifacts.run import RunFolder
from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "03_finetune_cv.sh"
EPOCHS = 6  # of 4 steps each: long enough to be interrupted mid-fold
EXTRA_ARGS = f"--epochs {EPOCHS} --set training.sampler.samples_per_epoch=16 --set training.batch_size=4"
REPO = "alice/kaggle"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """The prepared competition data (two folds) and a pretrained model to start from."""
    root = tmp_path_factory.mktemp("inputs")
    _save_model(root / "pretrained")
    return prepared_competition(root, n_images=6, folds=2), root / "pretrained"


def session_env(root: Path, inputs, hub=None) -> dict[str, str]:  # noqa: F811
    prep, pretrained = inputs
    work = root / "working"
    (work / "prepared").mkdir(parents=True)
    (work / "prepared" / "competition").symlink_to(prep)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
        "WORK_DIR": str(work),
        "PREP_DIR": str(work / "prepared"),  # what 01_preprocess.sh would have made
        "KAGGLE_INPUT": str(root / "input"),
        "ACCELERATE_CONFIG": str(REPO_ROOT / "accelerate_configs" / "cpu.yaml"),
        "FINETUNE_CONFIG": "tiny",
        "INIT_FROM": str(pretrained),
        "EXTRA_ARGS": EXTRA_ARGS,
        "HF_REPO": "",
    }
    if hub is not None:
        env.update(hub.env)  # endpoint, token
        env.update(HF_REPO=REPO, HF_HOME=str(root / "hf"), HF_HUB_CACHE=str(root / "hf" / "hub"))
    return env


def start(env: dict[str, str], log: Path) -> subprocess.Popen:
    """The phase in its own process group, as a notebook cell runs it."""
    return subprocess.Popen(
        ["bash", str(SCRIPT)], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_until(condition, proc: subprocess.Popen, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the phase ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def end_session(proc: subprocess.Popen, sig: signal.Signals, timeout: float = 300.0) -> None:
    """Send ``sig`` to the phase's process group and wait until every process has exited
    (bash and the launcher die at once; the training process saves and pushes first)."""
    os.killpg(proc.pid, sig)
    deadline = time.monotonic() + timeout
    while proc.poll() is None or live_members(proc.pid):
        assert time.monotonic() < deadline, "the phase's processes did not exit"
        time.sleep(0.1)


def live_members(group: int) -> list[int]:
    """Processes of process group ``group`` that still run (zombies do not count)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited meanwhile
        if int(fields[2]) == group and fields[0] != "Z":  # fields 5 (pgrp) and 3 (state)
            live.append(int(stat.parent.name))
    return live


def metrics_rows(run: Path) -> int:
    return len(RunFolder(run).metrics_rows())


def branch_result(hub, branch: str) -> dict | None:  # noqa: F811
    try:
        return json.loads(hub.files(REPO, branch)["result.json"])
    except KeyError:
        return None


def model_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return {
        f"{f.stem}.{k}": v
        for f in sorted(model_dir.glob("*.safetensors"))
        for k, v in load_file(str(f)).items()
    }


@pytest.fixture(scope="module")
def uninterrupted(inputs, tmp_path_factory) -> Path:
    """The phase run once, start to end, without the Hub."""
    root = tmp_path_factory.mktemp("uninterrupted")
    proc = subprocess.run(
        ["bash", str(SCRIPT)], env=session_env(root, inputs), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "working" / "runs" / "competition_finetune"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_sessions_end_mid_phase_and_the_phase_finishes_as_if_uninterrupted(
    hub,  # noqa: F811
    inputs,
    uninterrupted,
    tmp_path,
):
    # ---- session 1: fold 0 finishes and is pushed; SIGTERM to the group during fold 1.
    one = tmp_path / "session1"
    proc = start(session_env(one, inputs, hub), one / "log")
    fold_1 = one / "working" / "runs" / "competition_finetune" / "fold_1"
    wait_until(lambda: metrics_rows(fold_1) >= 1, proc, "fold 1's first epoch")
    assert branch_result(hub, "finetune-fold_0")["stopped_reason"] == "completed"  # pushed as it finished
    end_session(proc, signal.SIGTERM)
    log = (one / "log").read_text()
    assert "fold 1: pushed to alice/kaggle@finetune-fold_1 (with its training state)" in log, log[-3000:]
    pushed = hub.files(REPO, "finetune-fold_1")
    assert branch_result(hub, "finetune-fold_1")["stopped_reason"] == "SIGTERM"
    states = {p.split("/")[1] for p in pushed if p.startswith("states/")}
    assert len(states) == 1  # the newest state only
    state = states.pop()
    fold_1_commit = hub.repos[REPO].branches["finetune-fold_1"]

    # ---- session 2: restores, resumes fold 1, then SIGKILL: nothing saved, nothing pushed.
    two = tmp_path / "session2"
    proc = start(session_env(two, inputs, hub), two / "log")
    fold_1 = two / "working" / "runs" / "competition_finetune" / "fold_1"
    restored_rows = None
    wait_until(lambda: (fold_1 / "result.json").is_file(), proc, "fold 1's restore")
    restored_rows = metrics_rows(fold_1)
    wait_until(lambda: metrics_rows(fold_1) > restored_rows, proc, "an epoch of the resumed fold 1")
    end_session(proc, signal.SIGKILL)
    log = (two / "log").read_text()
    assert "fold 0: already finished" in log and f"continues from {state}" in log, log[-3000:]
    assert not (two / "working" / "runs" / "competition_finetune" / "fold_0" / "logs").exists()  # not trained
    assert (
        hub.repos[REPO].branches["finetune-fold_1"] == fold_1_commit
    )  # the Hub still holds session 1's state

    # ---- session 3: restores session 1's state again and finishes the phase.
    three = tmp_path / "session3"
    proc = start(session_env(three, inputs, hub), three / "log")
    assert proc.wait(timeout=600) == 0, (three / "log").read_text()[-3000:]
    log = (three / "log").read_text()
    assert "fold 0: already finished" in log and f"continues from {state}" in log
    assert f"resumed from {three}" in log and f"{state} (epoch" in log
    done = three / "working" / "runs" / "competition_finetune"
    assert not (done / "fold_0" / "logs").exists()  # fold 0 was never trained again
    assert branch_result(hub, "finetune-fold_1")["stopped_reason"] == "completed"
    assert not any(p.startswith("states/") for p in hub.files(REPO, "finetune-fold_1"))
    assert "model.safetensors" in hub.files(REPO, "finetune")  # the phase's result: the best fold

    # ---- equal to the uninterrupted phase, weight for weight.
    for model in ("fold_0/best", "fold_1/best", "fold_1/last"):
        expected, got = model_weights(uninterrupted / model), model_weights(done / model)
        assert expected.keys() == got.keys() and expected
        assert all(torch.equal(expected[k], got[k]) for k in expected), model
    summary, reference = (json.loads((d / "cv_summary.json").read_text()) for d in (done, uninterrupted))
    assert [f["mcc"] for f in summary["folds"]] == [f["mcc"] for f in reference["folds"]]
    assert summary["mean"] == reference["mean"] and summary["std"] == reference["std"]
    rows = [r.split(",")[:-2] for r in (done / "fold_1" / "metrics.csv").read_text().splitlines()]
    expected_rows = [
        r.split(",")[:-2] for r in (uninterrupted / "fold_1" / "metrics.csv").read_text().splitlines()
    ]
    assert rows == expected_rows  # every epoch's losses and scores, timings aside


def test_a_hub_repo_without_a_token_fails_before_training(inputs, tmp_path):
    env = session_env(tmp_path, inputs)
    env.update(HF_REPO=REPO, HF_HUB_OFFLINE="0")
    env.pop("HF_TOKEN", None)
    env["HF_HOME"] = str(tmp_path / "hf")  # no saved login either
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "error: cannot create 'alice/kaggle': not logged in" in proc.stderr
    assert "glacier/" not in proc.stderr  # one error line; the only traceback is accelerate launch's own
    assert not (tmp_path / "working" / "runs" / "competition_finetune" / "fold_0").exists()
