"""Metrics gathered over 2 real processes equal the single-process result exactly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from glacier.metrics import confusion_matrix

WORKER = Path(__file__).with_name("dist_metrics_worker.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gather_for_metrics_over_two_cpu_processes(tmp_path):
    sys.path.insert(0, str(WORKER.parent))
    from dist_metrics_worker import NUM_SAMPLES, RandomMasks

    out = tmp_path / "result.json"
    # --cpu with --num_processes 2 silently runs one process; --multi_gpu with
    # ACCELERATE_USE_CPU=1 starts two real gloo processes on CPU.
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(WORKER), str(out),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())

    assert result["world_size"] == 2
    assert result["samples"] == NUM_SAMPLES  # the padded duplicates were dropped
    data = RandomMasks()
    expected = confusion_matrix(data.pred, data.target)
    assert result["confusion"] == expected.tolist()
