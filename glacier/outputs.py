"""Where a command may write: never into its inputs, never over files it did not write.

Commands check their outputs here before doing any work, so a bad ``--out`` costs a
second, not an hour of training or prediction:

    require_kind(out, "folder", "--out")               # an existing file is not a folder
    refuse_inputs(out, [model, scenes], "--out")       # not an input, not inside one, not around one
    folder = OutputFolder(out, "predict")
    folder.check_replaceable("--out", inputs)          # predict, sample-data: replace the whole folder
    folder.check_no_collision(names, "--out", inputs)  # pull, export: add files beside a user's own

A folder a command writes holds a marker, ``.glacier-output.json``, listing the files that
command wrote. Only those count as its own: it replaces or deletes nothing else, and a
folder holding anything else (a user's notes, the truth masks, a run folder) is refused
with the names of the files it would have lost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from glacier import atomic
from glacier.errors import GlacierError

MARKER = ".glacier-output.json"
"""The file listing what a glacier command wrote into its output folder."""
_SHOWN = 5  # file names an error lists before "and N more"


def require_kind(path: str | os.PathLike, kind: str, option: str) -> Path:
    """``path`` if it is absent or of ``kind`` (``"folder"`` or ``"file"``); else a GlacierError."""
    path = Path(path)
    if kind == "folder" and path.exists() and not path.is_dir():
        raise GlacierError(
            f"{option} {path}: is a file, not a folder; give a folder (it is created if missing)"
        )
    if kind == "file" and path.is_dir():
        raise GlacierError(f"{option} {path}: is a folder; give a file name, e.g. {path / 'metrics.json'}")
    above = path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise GlacierError(f"{option} {path}: {above} is a file, so nothing can be created inside it")
    return path


def refuse_inputs(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], option: str) -> None:
    """Refuse an output ``path`` that is, contains or lies inside one of ``inputs`` (None skipped)."""
    out = Path(path).resolve()
    for given in inputs:
        if given is None or not Path(given).exists():
            continue
        source = Path(given).resolve()
        if out == source:
            relation = "is the input"
        elif source in out.parents:
            relation = "lies inside the input"
        elif out in source.parents:
            relation = "contains the input"
        else:
            continue
        raise GlacierError(
            f"{option} {path}: {relation} {given}; writing there would overwrite or mix with the "
            "input files: choose a folder outside the inputs"
        )


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


class OutputFolder:
    """A command's output folder and the files its marker says that command wrote there.

    ``command`` is the glacier command writing it (``predict``, ``sample-data``, ``pull``...).
    """

    def __init__(self, path: str | os.PathLike, command: str) -> None:
        self.path = Path(path)
        self.command = command

    def written(self) -> set[str]:
        """Files (relative POSIX names) this command's marker lists; empty without one."""
        try:
            data = json.loads((self.path / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return set()
        if not isinstance(data, dict) or data.get("written_by") != f"glacier {self.command}":
            return set()
        files = data.get("files")
        return {f for f in files if is_safe_relative(f)} if isinstance(files, list) else set()

    def foreign_files(self) -> list[str]:
        """Files under the folder that this command did not write (the marker itself aside)."""
        if not self.path.is_dir():
            return []
        own = self.written() | {MARKER}
        names = (p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if not p.is_dir())
        return sorted(name for name in names if name not in own)

    def check_replaceable(self, option: str, inputs: Iterable[str | os.PathLike | None] = ()) -> None:
        """Refuse to replace the folder when it is an input (``refuse_inputs``) or holds files
        this command did not write."""
        require_kind(self.path, "folder", option)
        refuse_inputs(self.path, inputs, option)
        foreign = self.foreign_files()
        if foreign:
            raise GlacierError(
                f"{option} {self.path}: holds files glacier {self.command} did not write "
                f"({_listing(foreign)}); they would be lost: choose a new or empty folder"
            )

    def check_no_collision(
        self, names: Iterable[str], option: str, inputs: Iterable[str | os.PathLike | None] = ()
    ) -> None:
        """Refuse when the folder is an input (``refuse_inputs``) or a file this command would
        write exists there and is not its own."""
        require_kind(self.path, "folder", option)
        refuse_inputs(self.path, inputs, option)
        own = self.written()
        taken = sorted(n for n in names if n not in own and (self.path / n).exists())
        if taken:
            raise GlacierError(
                f"{option} {self.path}: already holds {_listing(taken)}, which glacier {self.command} "
                "did not write; move them away or choose another folder"
            )

    def write_marker(self, folder: str | os.PathLike, files: Iterable[str]) -> None:
        """Write the marker listing ``files`` into ``folder`` (the output or its temporary twin)."""
        record = {"written_by": f"glacier {self.command}", "files": sorted(set(files) - {MARKER})}
        atomic.write_json(Path(folder) / MARKER, record)


def is_safe_relative(name: object) -> bool:
    """Whether ``name`` is a relative POSIX file name that stays inside its folder (no ``..``,
    no absolute path, no empty or ``.`` parts, no backslash)."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def remove_empty_parents(path: Path, root: Path) -> None:
    """Remove the now-empty folders from ``path``'s parent up to (not including) ``root``."""
    folder = path.parent
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): stop here
            return
        folder = folder.parent


def files_under(folder: str | os.PathLike) -> list[str]:
    """Every file under ``folder`` as a relative POSIX name (what a marker lists)."""
    root = Path(folder)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())
