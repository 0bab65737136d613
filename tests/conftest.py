"""Shared test helpers: run the CLI in-process, locate the real HKH fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests run on 2 CPU cores: keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
HKH_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "hkh"


def run_cli(*args: str) -> int:
    """Run `glacier ARGS...` in-process and return its exit code."""
    from glacier.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def hkh_fixtures() -> Path:
    if not HKH_FIXTURES.is_dir():
        pytest.skip(f"real HKH fixtures not found at {HKH_FIXTURES}")
    return HKH_FIXTURES
