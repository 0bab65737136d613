"""One check for every "bad input" row: the CLI fails cleanly and leaves the user's files alone.

    code, line = assert_clean_failure(cli, capsys, ["predict", M, IN, "--out", IN / "Band1"],
                                      culprit="Band1", inputs=[M, IN])

Asserts: the documented exit status (1 unless told), exactly one ``error:`` line on stderr
naming the culprit, no traceback, and every file under ``inputs`` unchanged (by hash, and
no file added or removed there).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path


def tree_hashes(paths: Iterable[str | Path]) -> dict[str, str]:
    """sha256 of every file under each path (a file or a folder), keyed by path."""
    hashes: dict[str, str] = {}
    for root in map(Path, paths):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def assert_clean_failure(
    cli,
    capsys,
    argv: Sequence[str | Path],
    *,
    culprit: str,
    inputs: Sequence[str | Path] = (),
    code: int = 1,
) -> str:
    """Run ``glacier ARGV`` in-process and assert it failed cleanly; returns the error line."""
    before = tree_hashes(inputs)
    got = cli(*map(str, argv))
    err = capsys.readouterr().err
    assert got == code, f"exit {got}, expected {code}; stderr:\n{err}"
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"expected one error: line, got:\n{err}"
    assert culprit in errors[0], f"{culprit!r} not named in: {errors[0]}"
    assert tree_hashes(inputs) == before, "an input file was changed, added or removed"
    return errors[0]
