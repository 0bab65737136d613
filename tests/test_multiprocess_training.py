"""Two real processes on CPU through `accelerate launch`: training runs, and validation
metrics equal the single-process ones on the same weights (no padded duplicates counted)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from training_data import FAST, prepared_competition

WORKER = Path(__file__).with_name("training_validate_worker.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(*args: str, processes: int = 2, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # --cpu --num_processes 2 silently runs ONE process; --multi_gpu with ACCELERATE_USE_CPU=1
    # starts two real gloo processes on CPU.
    env = {**os.environ, **(env or {}), "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        *args,
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("data"))


def test_two_process_finetune_and_validation_equal_to_one_process(prep, tmp_path):
    run = tmp_path / "run"
    done = launch(
        "-m", "glacier", "finetune", "--config", "tiny", "--data", str(prep), "--out", str(run),
        "--epochs", "1", "--fold", "0", *FAST,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 process(es)" in done.stdout
    assert done.stdout.count("epoch 1/1 |") == 1  # printed by the main process only
    assert (run / "best" / "model.safetensors").is_file()
    row = next(csv.DictReader((run / "metrics.csv").open()))

    one, two = tmp_path / "one.json", tmp_path / "two.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, str(WORKER), str(run / "best"), str(prep), "0", str(one)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    double = launch(str(WORKER), str(run / "best"), str(prep), "0", str(two))
    assert double.returncode == 0, double.stderr[-3000:]
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert (a["world_size"], b["world_size"]) == (1, 2)
    assert a["tiles"] == b["tiles"] == 3  # 3 validation tiles, none counted twice
    assert a["confusion"] == b["confusion"]
    assert a["mcc"] == b["mcc"]
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    # The 2-process training's own validation agrees with the 1-process evaluation.
    assert float(row["val_mcc"]) == pytest.approx(a["mcc"], abs=1e-5)
