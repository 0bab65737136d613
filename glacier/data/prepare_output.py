"""Where ``glacier preprocess`` writes: checks that keep a user's files safe and a full disk clear.

- ``check_output``: the output may be new, empty or a prepared dataset holding nothing but
  what preprocess writes; never the input, inside it, or around it.
- ``remove_stale_temporaries``: the temporary folders of earlier runs that died (SIGKILL,
  power loss) sit next to the output as ``.NAME.tmp-PID-XXXXXXXX``; those whose process is
  gone and that hold only what preprocess writes (its marker file, or a prepared dataset) go.
- ``check_free_space`` refuses up front when the arrays will not fit; ``disk_errors`` turns
  a full disk while writing into one DataError (the writer uses plain writes, not memory
  maps, so a full disk is an OSError and never a SIGBUS).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from glacier.data import prepared_format as fmt
from glacier.errors import DataError

TEMP_MARKER = ".glacier-preprocess-tmp"
"""Written first into preprocess's temporary folder: it says who made the folder."""
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_HEADROOM_BYTES = 64 * 2**20
"""Free space kept beyond the estimate (manifest, file-system overhead)."""


def _is_prepared_folder(folder: Path) -> bool:
    """Whether ``folder`` holds only preprocess's files, with a glacier-prepared manifest."""
    names = {p.name for p in folder.iterdir()}
    if not names <= set(fmt.FILES) | {TEMP_MARKER}:
        return False
    if TEMP_MARKER in names:
        return True
    try:
        manifest = json.loads((folder / fmt.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return not names  # an empty folder is harmless; anything unreadable is not ours to judge
    return isinstance(manifest, dict) and manifest.get("format") == fmt.FORMAT


def check_output(out: Path, source: Path) -> None:
    """A DataError unless preprocess may write ``out`` from ``source``."""
    out_real, source_real = out.resolve(), source.resolve()
    if out_real == source_real or out_real in source_real.parents:
        raise DataError(f"{out}: the input {source} lies inside --out; choose an --out folder outside it")
    if source_real in out_real.parents:
        raise DataError(f"{out}: --out lies inside the input {source}; choose an --out folder outside it")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder; choose a new or empty --out folder")
    if out.is_dir() and not _is_prepared_folder(out):
        foreign = sorted(p.name for p in out.iterdir() if p.name not in fmt.FILES)
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise DataError(
            f"{out}: holds files preprocess did not write ({shown or 'a manifest of another kind'}); "
            "choose a new or empty --out folder (preprocess replaces only a prepared dataset)"
        )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove the temporary folders of dead preprocess runs next to ``out``; returns them."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.tmp-(\d+)-[0-9a-f]{{8}}$")
    if not out.parent.is_dir():
        return []
    removed = []
    for folder in sorted(out.parent.iterdir()):
        match = pattern.match(folder.name)
        if not match or not folder.is_dir() or folder.is_symlink():
            continue
        if _process_alive(int(match.group(1))) or not _is_prepared_folder(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def check_free_space(out: Path, needed_bytes: int) -> None:
    """A DataError when the disk of ``out`` has less free space than ``needed_bytes`` (plus headroom)."""
    parent = next(p for p in (out, *out.parents) if p.exists())
    free = shutil.disk_usage(parent).free
    if needed_bytes + _HEADROOM_BYTES > free:
        raise DataError(
            f"{out}: the prepared dataset needs {needed_bytes / 2**30:.2f} GiB and its disk has "
            f"{free / 2**30:.2f} GiB free (an existing prepared folder is replaced only after the new one "
            "is written); free space or choose an --out on a larger disk (scratch space, e.g. /kaggle/temp)"
        )


@contextlib.contextmanager
def disk_errors(out: Path) -> Iterator[None]:
    """Turn running out of disk space while writing ``out`` into one DataError."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _NO_ROOM:
            raise
        written = Path(exc.filename).name if exc.filename else "the prepared dataset"
        raise DataError(
            f"{out}: no space left while writing {written} ({os.strerror(exc.errno)}); nothing was kept: "
            "free space or choose an --out on a larger disk"
        ) from None
