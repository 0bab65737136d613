"""Command-line usage errors: Typer's own message and exit code 2, never a traceback.

Typer 0.29 raises the exceptions of its private copy of click, older releases click's; the
CLI must handle both (tests/test_hub*.py and this file run on the lowest bounds too).
"""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--no-such-option"], ("No such option", "--no-such-option")),
        (["finetune", "--no-such-option"], ("No such option", "--no-such-option")),
        (["pull"], ("Missing argument",)),
        (["no-such-command"], ("No such command", "no-such-command")),
    ],
)
def test_usage_errors_are_one_message_and_exit_2(cli, capsys, args, words):
    assert cli(*args) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "Usage: glacier" in err, err
    assert "Traceback" not in err


def test_help_exits_0(cli, capsys):
    assert cli("--help") == 0
    assert "preprocess" in capsys.readouterr().out


def test_a_user_error_is_one_error_line_and_exit_1(cli, capsys, tmp_path):
    assert cli("evaluate", tmp_path / "missing-model", tmp_path / "missing-data") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_the_installed_command_prints_no_traceback():
    """The real entry point, in a fresh interpreter: what a user sees in a terminal."""
    proc = subprocess.run(
        [sys.executable, "-m", "glacier", "predict", "--no-such-option"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "No such option" in proc.stderr and "Traceback" not in proc.stderr
