"""The Accelerate configs in accelerate_configs/ parse with Accelerate itself and really launch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file

from tests.conftest import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "accelerate_configs"

EXPECTED = {
    # file: (distributed_type, num_processes, mixed_precision, use_cpu)
    "kaggle_2xT4.yaml": ("MULTI_GPU", 2, "fp16", False),
    "single_gpu.yaml": ("NO", 1, "fp16", False),  # T4 and P100 (Kaggle's single GPUs) lack bf16
    "single_gpu_bf16.yaml": ("NO", 1, "bf16", False),
    "multi_node.yaml": ("MULTI_GPU", 8, "bf16", False),
    "cpu.yaml": ("NO", 1, "no", True),
}

PROBE = """
import sys
from accelerate import Accelerator
acc = Accelerator()
with open(sys.argv[1] + f".{acc.process_index}", "w") as f:
    f.write(f"{acc.process_index} {acc.num_processes} {acc.distributed_type} {acc.device.type} {acc.mixed_precision}")
"""


def test_every_config_is_expected():
    assert sorted(p.name for p in CONFIG_DIR.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_parses_with_accelerate(name):
    cfg = load_config_from_file(str(CONFIG_DIR / name))
    dist, procs, precision, use_cpu = EXPECTED[name]
    assert str(cfg.distributed_type).split(".")[-1] == dist
    assert cfg.num_processes == procs
    assert str(cfg.mixed_precision).split(".")[-1] == precision
    assert cfg.use_cpu is use_cpu
    if name == "multi_node.yaml":
        assert cfg.num_machines == 2 and cfg.machine_rank == 0
        assert cfg.main_process_ip and cfg.main_process_port


def _launch(tmp_path: Path, args: list[str], env_extra: dict[str, str]) -> list[str]:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    marker = tmp_path / "rank"
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_extra}
    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    proc = subprocess.run(
        [*launcher, *args, str(probe), str(marker)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return sorted(p.read_text() for p in tmp_path.glob("rank.*"))


def test_cpu_config_launches_one_cpu_process(tmp_path):
    ranks = _launch(tmp_path, ["--config_file", str(CONFIG_DIR / "cpu.yaml")], {})
    assert ranks == ["0 1 DistributedType.NO cpu no"]


def test_two_cpu_processes_recipe_documented_in_cpu_yaml(tmp_path):
    """The recipe cpu.yaml documents for 2 CPU processes really gives a world of 2."""
    assert (
        "ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2"
        in (CONFIG_DIR / "cpu.yaml").read_text()
    )
    args = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    args += ["--dynamo_backend", "no"]
    ranks = _launch(tmp_path, args, {"ACCELERATE_USE_CPU": "1"})
    assert ranks == ["0 2 DistributedType.MULTI_CPU cpu no", "1 2 DistributedType.MULTI_CPU cpu no"]
