"""The command line as a user meets it: --version, usage errors as one line, choices, completion.

Usage errors are tested against the typer this install has (0.29 bundles its own click,
whose exceptions are not the standalone click's).
"""

from __future__ import annotations

import pytest

from glacier import __version__
from glacier.cli import EXIT_ERROR
from glacier.config import preset_names
from glacier.options import DEVICES, TTA_MODES


def run(cli, capsys, *argv: str) -> tuple[int, str, str]:
    code = cli(*argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(cli, capsys):
    code, out, err = run(cli, capsys, "--version")
    assert code == 0 and out.strip() == f"glacier {__version__}" and err == ""


@pytest.mark.parametrize(
    ("argv", "culprit"),
    [
        ((), "no command given"),
        (("nosuchcommand",), "nosuchcommand"),
        (("predict",), "'model'"),
        (("predict", "m", "in"), "'--out'"),
        (("finetune", "--epochs", "notanint"), "--epochs"),
        (("finetune", "--no-such-option"), "--no-such-option"),
        (("predict", "m", "in", "--out", "o", "--device", "tpu"), "--device"),
        (("predict", "m", "in", "--out", "o", "--tta", "d8"), "--tta"),
        (("export-submission", "m", "--out", "o", "--tta", "d4"), "--tta"),
    ],
)
def test_usage_errors_are_one_line(cli, capsys, tmp_path, monkeypatch, argv, culprit):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(cli, capsys, *argv)
    assert code == EXIT_ERROR
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert culprit in lines[0] and "--help" in lines[0]
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # a usage error writes nothing


def test_bare_glacier_shows_the_commands(cli, capsys):
    code, out, err = run(cli, capsys)
    assert code == EXIT_ERROR
    assert "predict" in out and "finetune" in out
    assert err.startswith("error: glacier: no command given")


def test_help_lists_the_choices(cli, capsys):
    _, out, _ = run(cli, capsys, "predict", "--help")
    assert "none|flip|d4" in out and "auto|cpu|cuda" in out
    _, out, _ = run(cli, capsys, "finetune", "--help")
    flat = " ".join(out.replace("│", " ").split())
    assert all(name in flat for name in preset_names())


def test_library_and_cli_share_the_tta_modes():
    from glacier.predict.tta import TTA_TRANSFORMS

    assert tuple(TTA_TRANSFORMS) == TTA_MODES
    assert DEVICES[0] == "auto"


def complete(cli, capsys, monkeypatch, words: str) -> list[str]:
    monkeypatch.setenv("_GLACIER_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - (0 if words.endswith(" ") else 1)))
    cli()
    return capsys.readouterr().out.split()


def test_shell_completion(cli, capsys, monkeypatch):
    assert {"predict", "preprocess", "pretrain"} <= set(complete(cli, capsys, monkeypatch, "glacier pre"))
    assert complete(cli, capsys, monkeypatch, "glacier predict m x --tta ") == list(TTA_MODES)
    assert complete(cli, capsys, monkeypatch, "glacier finetune --config competition_f") == [
        name for name in preset_names() if name.startswith("competition_f")
    ]
    monkeypatch.delenv("_GLACIER_COMPLETE")
    # Typer's own switch that makes --show-completion take the shell as its value: without it
    # the shell is detected from the process tree, which a test run does not control (an
    # in-process run after subprocess-heavy tests detected none: "Shell  not supported").
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    code, out, err = run(cli, capsys, "--show-completion", "bash")
    assert code == 0 and "_GLACIER_COMPLETE" in out, err
