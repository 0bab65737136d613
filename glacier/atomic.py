"""Atomic writes: build under a temporary name next to the target, then rename.

A crash or Ctrl-C part-way leaves the previous version (or nothing), never a half-written
file or folder under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

_TEMPORARY_PART = re.compile(r"^\.(.+)\.tmp-\d+-[0-9a-f]{8}$")


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name beside ``path`` (same folder, so a rename onto ``path`` is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def final_path(path: str | os.PathLike) -> Path:
    """``path`` with every temporary name (``temporary_sibling``) in it replaced by the name
    it stands for: what a message about a failed write should name."""
    parts = [_TEMPORARY_PART.sub(r"\1", part) for part in Path(path).parts]
    return Path(*parts) if parts else Path(path)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: object) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it takes the place of ``path``.

    With ``overwrite`` an existing folder at ``path`` is replaced (it is renamed away first
    and deleted only after the new one is in place). On an exception the temporary folder is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(path)
        old = temporary_sibling(path)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
