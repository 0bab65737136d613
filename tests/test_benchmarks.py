"""The benchmark scripts keep up with the package they measure.

Nothing imports them, so a renamed function or a changed return type breaks them silently
(``submission_time.py`` passed an ``EnsembleFolder`` where a path was expected, found only
when it was next run). Every script is loaded and its arguments parsed here; the cheapest
one to run end to end (the submission timing, on tiny tiles) runs under ``-m slow``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

BENCHMARKS = sorted((REPO_ROOT / "benchmarks").glob("*.py"))

# One interpreter for all scripts (torch is imported once): each is run as __main__ with
# --help, from its own folder as `python benchmarks/x.py` would, and must exit 0 with its usage.
_HELP_ALL = """
import contextlib, io, runpy, sys
sys.path.insert(0, sys.argv[1])
failed = []
for script in sys.argv[2:]:
    sys.argv = [script, "--help"]
    usage = io.StringIO()
    try:
        with contextlib.redirect_stdout(usage):
            runpy.run_path(script, run_name="__main__")
        failed.append(f"{script}: --help did not exit")
    except SystemExit as stop:
        if stop.code not in (0, None) or "usage:" not in usage.getvalue():
            failed.append(f"{script}: --help exited {stop.code}")
    except Exception as error:  # the import or the parser broke: report which script
        failed.append(f"{script}: {type(error).__name__}: {error}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_there_are_benchmarks():
    assert len(BENCHMARKS) >= 10, [p.name for p in BENCHMARKS]


def test_every_benchmark_imports_and_parses_its_arguments():
    result = subprocess.run(
        [sys.executable, "-c", _HELP_ALL, str(REPO_ROOT / "benchmarks"), *map(str, BENCHMARKS)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]


@pytest.mark.slow
def test_submission_time_benchmark_runs_end_to_end():
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/submission_time.py",
            *("--encoder", "mobilenet_v2", "--members", "2", "--tiles", "2", "--size", "64"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for label in ("one model", "2-member ensemble"):
        rows = [line for line in result.stdout.splitlines() if line.startswith(f"{label}: model.pth")]
        assert rows and "measured 2 tiles" in rows[0], result.stdout
