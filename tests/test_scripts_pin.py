"""scripts/pin_preinstalled.py: the constraints file that keeps a notebook's torch stack."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "pin_preinstalled.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_pins_exactly_the_installed_torch_stack(tmp_path):
    pins = tmp_path / "work" / "pip-constraints.txt"
    proc = _run(str(pins))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in pins.read_text().splitlines() if not line.startswith("#")]
    expected = []
    for name in ("torch", "torchvision", "torchaudio"):
        try:
            expected.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue  # not installed: not pinned, so the requirements may still install it
    assert lines == expected and lines[0].startswith("torch==")
    assert f"torch {metadata.version('torch')}" in proc.stdout
    assert list(pins.parent.iterdir()) == [pins]  # no temporary file left behind


def test_pip_reads_the_file_as_constraints(tmp_path):
    """pip itself refuses another torch with this file (a dry run: nothing is installed)."""
    pins = tmp_path / "pip-constraints.txt"
    assert _run(str(pins)).returncode == 0
    torch_version = metadata.version("torch")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-index",
            "-c",
            str(pins),
            f"torch!={torch_version}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    # e.g. "The user requested (constraint) torch==2.14.1" (pip merges any other caps in)
    assert re.search(rf"\(constraint\) torch\S*=={re.escape(torch_version)}\b", proc.stdout + proc.stderr)


def test_check_passes_while_unchanged_and_names_what_changed(tmp_path):
    pins = tmp_path / "pip-constraints.txt"
    assert _run(str(pins)).returncode == 0
    assert _run("--check", str(pins)).returncode == 0

    pins.write_text(pins.read_text().replace("torch==", "torch==0.0.1+was-", 1))
    proc = _run("--check", str(pins))
    assert proc.returncode == 1
    assert (
        f"torch: pinned 0.0.1+was-{metadata.version('torch')}, installed {metadata.version('torch')}"
        in proc.stderr
    )


def test_check_of_a_package_that_disappeared(tmp_path):
    pins = tmp_path / "pip-constraints.txt"
    pins.write_text("no-such-package-glacier==1.0\n")
    proc = _run("--check", str(pins))
    assert proc.returncode == 1 and "no-such-package-glacier: pinned 1.0, installed nothing" in proc.stderr


def test_check_without_a_file_is_one_error_line(tmp_path):
    proc = _run("--check", str(tmp_path / "missing.txt"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.txt'}: not found; run without --check first"
    ]
