"""scripts/kaggle_setup.sh as a Kaggle user runs it: read-only repository, torch preinstalled.

Slow (minutes): a fresh virtual environment gets torch first, as a notebook has it, then the
set-up installs glacier and its dependencies from the package index. As root, chmod a-w
does not stop writes, so the copy is also mounted read-only in a private mount namespace,
which is how Kaggle mounts a dataset ("Read-only file system").

GLACIER_TEST_TORCH names what the notebook has preinstalled (default ``torch==2.13.0``, a
CPU wheel on this project's machines; e.g. ``torch==2.14.1 torchvision==0.29.1``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

PREINSTALLED = os.environ.get("GLACIER_TEST_TORCH", "torch==2.13.0").split()
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv*", "__pycache__", "*.egg-info", "build", "dist", "runs", ".pytest_cache", ".ruff_cache"
)
VERSIONS = (
    "import importlib.metadata as m, json, sys; print(json.dumps({d: m.version(d) for d in sys.argv[1:]}))"
)


@pytest.fixture(scope="module")
def notebook(tmp_path_factory) -> Path:
    """A virtual environment holding only the preinstalled torch stack."""
    venv = tmp_path_factory.mktemp("notebook") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _pip(venv, "install", "-q", *PREINSTALLED)
    return venv


def _pip(venv: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", *args],
        env=_env(venv),
        capture_output=True,
        text=True,
        check=check,
        timeout=1800,
    )


def _env(venv: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}", "VIRTUAL_ENV": str(venv), **extra}


def _python(venv: Path, code: str, cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, *args],
        env=_env(venv),
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _torch_stack(venv: Path, cwd: Path) -> dict[str, str]:
    names = tuple(re.split(r"[=<>!~ ]", spec)[0] for spec in PREINSTALLED)
    versions = json.loads(_python(venv, VERSIONS, cwd, *names))
    record = _python(
        venv, "import importlib.metadata as m; print(m.distribution('torch').locate_file(''))", cwd
    )
    torch_record = next(Path(record).glob("torch-*.dist-info")) / "RECORD"
    return {**versions, "torch RECORD mtime": torch_record.stat().st_mtime_ns}


def _read_only_copy(tmp_path: Path) -> Path:
    repo = tmp_path / "input" / "glacier-repo"
    shutil.copytree(REPO_ROOT, repo, ignore=NOT_COPIED, symlinks=True)
    for path in [repo, *repo.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return repo


def _run_read_only(repo: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``script`` of ``repo`` with ``repo`` read-only (a probe write must fail first)."""
    body = f'if touch "{repo}/.write-probe" 2>/dev/null; then exit 97; fi; bash "{repo}/{script}"'
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare: cannot make the copy read-only")
        mount = f'mount --bind "{repo}" "{repo}" && mount -o remount,bind,ro "{repo}" && {body}'
        command = ["unshare", "--mount", "bash", "-c", mount]
    else:
        command = ["bash", "-c", body]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=2400)


def _restore_write(repo: Path) -> None:
    for path in [repo, *repo.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_setup_from_a_read_only_repository_keeps_the_preinstalled_torch(notebook, tmp_path):
    repo = _read_only_copy(tmp_path)
    (tmp_path / "input").mkdir(exist_ok=True)
    work = tmp_path / "working"
    before = _torch_stack(notebook, tmp_path)
    env = _env(notebook, KAGGLE_INPUT=str(tmp_path / "input"), WORK_DIR=str(work))
    try:
        proc = _run_read_only(repo, "scripts/kaggle_setup.sh", env)
        assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        assert "is read-only: installing glacier from a copy" in proc.stdout
        assert not list(repo.glob("*.egg-info"))  # nothing written into the dataset

        assert _torch_stack(notebook, tmp_path) == before  # same versions, not even reinstalled
        pins = (work / "pip-constraints.txt").read_text()
        assert f"torch=={before['torch']}" in pins.splitlines()

        # The installed glacier, not the source tree: run from elsewhere, without PYTHONPATH.
        located = _python(notebook, "import glacier; print(glacier.__file__)", tmp_path)
        assert "site-packages" in located and str(repo) not in located
        help_ = subprocess.run(
            [str(notebook / "bin" / "glacier"), "--help"],
            env=_env(notebook),
            cwd=tmp_path,
            capture_output=True,
        )
        assert help_.returncode == 0 and b"preprocess" in help_.stdout
        _dependency_cannot_replace_torch(notebook, tmp_path, work / "pip-constraints.txt", before["torch"])
    finally:
        _restore_write(repo)


def _dependency_cannot_replace_torch(venv: Path, tmp_path: Path, pins: Path, torch_version: str) -> None:
    """A package asking for any other torch is refused with the constraints; torch stays."""
    wheel = _wheel_requiring(tmp_path, f"torch!={torch_version}")
    before = _torch_stack(venv, tmp_path)
    proc = _pip(venv, "install", "-c", str(pins), str(wheel), check=False)
    assert proc.returncode != 0
    assert "conflict" in (proc.stdout + proc.stderr).lower()
    assert _torch_stack(venv, tmp_path) == before


def _wheel_requiring(tmp_path: Path, requirement: str) -> Path:
    """A minimal pure-Python wheel whose only content is one requirement."""
    wheel = tmp_path / "wants_other_torch-1.0-py3-none-any.whl"
    info = "wants_other_torch-1.0.dist-info"
    files = {
        "wants_other_torch/__init__.py": "",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: wants-other-torch\nVersion: 1.0\nRequires-Dist: {requirement}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr(f"{info}/RECORD", "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"]))
    return wheel


def test_setup_from_a_writable_clone_installs_editable(notebook, tmp_path):
    repo = tmp_path / "working" / "glacier"  # as a clone in /kaggle/working (not beside the cwd)
    shutil.copytree(REPO_ROOT, repo, ignore=NOT_COPIED, symlinks=True)
    before = _torch_stack(notebook, tmp_path)
    env = _env(notebook, KAGGLE_INPUT=str(tmp_path / "input"), WORK_DIR=str(tmp_path / "working"))
    proc = subprocess.run(
        ["bash", str(repo / "scripts" / "kaggle_setup.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "(editable)" in proc.stdout
    assert _python(notebook, "import glacier; print(glacier.__file__)", tmp_path) == str(
        repo / "glacier" / "__init__.py"
    )
    assert _torch_stack(notebook, tmp_path) == before


def test_the_declared_minimum_setuptools_builds_the_wheel(notebook, tmp_path):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    (requirement,) = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = requirement.split(">=", 1)[1]
    source = tmp_path / "src"
    shutil.copytree(REPO_ROOT, source, ignore=NOT_COPIED, symlinks=True)
    _pip(notebook, "install", "-q", f"setuptools=={minimum}")
    proc = _pip(
        notebook, "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(tmp_path / "dist"), str(source),
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("glacier-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "glacier/configs/tiny.yaml" in names and "glacier/cli/__init__.py" in names
