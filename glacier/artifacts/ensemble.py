"""The ensemble folder: several model folders that predict together.

    ENSEMBLE_DIR/
      ensemble.json     {"format": "glacier-ensemble", "format_version": 1, "bands": [...],
                         "members": [{"name", "path", "seed", "fold", "metrics"}], "metrics": {...}}
      members/<name>/   model folders (model.py)
      README.md         the ensemble's card

Training writes it (``glacier ensemble``); prediction, export and the Hub read it. Reading
it imports no torch. ``ensemble.json`` is written last: a folder without it is not (yet)
an ensemble.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glacier import atomic
from glacier.artifacts.model import ModelFolder
from glacier.artifacts.model_config import format_version
from glacier.errors import ModelError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass(frozen=True)
class EnsembleMember:
    """One trained model to put into an ensemble."""

    name: str
    model_dir: Path
    """A model folder (e.g. a member run's ``best/``)."""
    seed: int | None = None
    fold: int | None = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)


class EnsembleFolder:
    """An ensemble on disk (see the module docstring for its files)."""

    kind = "ensemble"
    MANIFEST = "ensemble.json"
    MEMBERS = "members"
    CARD = "README.md"
    FORMAT = "glacier-ensemble"
    FORMAT_VERSION = 1

    def __init__(self, path: str | Path, *, repo_id: str | None = None, revision: str | None = None) -> None:
        self.path = Path(path)
        self.repo_id = repo_id
        """The Hub repo it was pulled from (``path`` is then the cached snapshot)."""
        self.revision = revision
        self._manifest: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"EnsembleFolder({str(self.path)!r})"

    @classmethod
    def found_at(cls, path: str | Path) -> bool:
        """True if ``path`` holds an ``ensemble.json`` of the glacier-ensemble format."""
        try:
            data = json.loads((Path(path) / cls.MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and data.get("format") == cls.FORMAT

    @property
    def manifest(self) -> dict[str, Any]:
        """The checked ``ensemble.json`` (``verify()``, read once)."""
        if self._manifest is None:
            self._manifest = self.verify()
        return self._manifest

    def members(self) -> dict[str, ModelFolder]:
        """The member model folders by name, in the manifest's order."""
        return {m["name"]: ModelFolder(self.path / m["path"]) for m in self.manifest["members"]}

    def verify(self) -> dict[str, Any]:
        """Check ``ensemble.json`` and every member's model folder; return the manifest.

        A ModelError says which file is wrong and what to do.
        """
        manifest = self.read_manifest()
        for member in manifest["members"]:
            meta = ModelFolder(self.path / member["path"]).verify()
            if list(meta.bands) != manifest.get("bands"):
                raise ModelError(
                    f"{self.path / self.MANIFEST}: member {member['name']!r} reads bands {list(meta.bands)}, "
                    f"the ensemble says {manifest.get('bands')}"
                )
        return manifest

    def read_manifest(self) -> dict[str, Any]:
        """``ensemble.json`` checked on its own (format, version, member entries and their
        paths), without opening the members: what a pull needs to know which files to fetch."""
        manifest_path = self.path / self.MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except OSError:
            raise ModelError(
                f"{manifest_path}: missing; is {self.path} an ensemble folder (glacier ensemble writes one)?"
            ) from None
        except ValueError as exc:
            raise ModelError(
                f"{manifest_path}: not valid JSON ({exc}); the ensemble folder is damaged"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != self.FORMAT:
            raise ModelError(f"{manifest_path}: not a glacier ensemble (format is not {self.FORMAT!r})")
        version = format_version(manifest, manifest_path, default=0)
        if version > self.FORMAT_VERSION:
            raise ModelError(
                f"{manifest_path}: format_version {version} is newer than this glacier reads; upgrade glacier"
            )
        members = manifest.get("members")
        if not isinstance(members, list) or not members:
            raise ModelError(f"{manifest_path}: no members listed")
        for number, member in enumerate(members, start=1):
            self._check_entry(number, member, manifest_path)
        return manifest

    def _check_entry(self, number: int, member: Any, manifest_path: Path) -> None:
        if not isinstance(member, dict):
            raise ModelError(
                f"{manifest_path}: member {number} is {type(member).__name__} {member!r}, not an object "
                '{"name": ..., "path": ...}; the ensemble folder is damaged'
            )
        if not member.get("name") or not isinstance(member.get("path"), str):
            raise ModelError(f"{manifest_path}: member {number} needs a name and a path: {member!r}")
        rel = Path(member["path"])
        member_dir = (self.path / rel).resolve()
        if rel.is_absolute() or ".." in rel.parts or self.path.resolve() not in member_dir.parents:
            raise ModelError(
                f"{manifest_path}: member path {str(rel)!r} must be a sub-folder of the ensemble"
            )

    def card(self, **kwargs: Any) -> str:
        """The ensemble's card, described by its first member; ``kwargs`` as ``card.render_card``."""
        from glacier.artifacts.card import render_card

        first = next(iter(self.members().values()))
        return render_card(first.meta, ensemble=self.manifest, **kwargs)

    @classmethod
    def write(
        cls,
        path: str | Path,
        members: Sequence[EnsembleMember],
        *,
        move: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> EnsembleFolder:
        """Copy (or ``move``) the members' model folders into ``path/members/<name>``, then write
        the card and ``ensemble.json``. All members must read the same bands. ``extra`` adds
        keys to ensemble.json (e.g. the training config)."""
        folder = cls(path)
        bands = _check_members(folder.path, members)
        entries = [folder._place_member(member, move) for member in members]
        manifest = {
            "format": cls.FORMAT,
            "format_version": cls.FORMAT_VERSION,
            "bands": bands,
            "members": entries,
            "metrics": _summary(members),
            **(extra or {}),
        }
        folder._manifest = manifest
        atomic.write_text(folder.path / cls.CARD, folder.card())
        atomic.write_json(folder.path / cls.MANIFEST, manifest)
        return folder

    def _place_member(self, member: EnsembleMember, move: bool) -> dict[str, Any]:
        target = self.path / self.MEMBERS / member.name
        source = Path(member.model_dir)
        if source.resolve() != target.resolve():
            with atomic.atomic_dir(target) as tmp:
                if move:
                    shutil.rmtree(tmp)
                    shutil.move(str(source), str(tmp))
                else:
                    shutil.copytree(source, tmp, dirs_exist_ok=True)
        return {
            "name": member.name,
            "path": f"{self.MEMBERS}/{member.name}",
            "seed": member.seed,
            "fold": member.fold,
            "metrics": member.metrics,
        }


def _check_members(folder: Path, members: Sequence[EnsembleMember]) -> list[str]:
    """The members' shared bands; a ModelError for no members, bad names or differing bands."""
    if not members:
        raise ModelError(f"{folder}: an ensemble needs at least one member")
    names = [m.name for m in members]
    bad = [n for n in names if not _SAFE_NAME.match(n)]
    if bad or len(set(names)) != len(names):
        raise ModelError(f"ensemble member names must be unique folder names, got {names}")
    metas = [ModelFolder(m.model_dir).verify() for m in members]
    bands = list(metas[0].bands)
    for member, meta in zip(members, metas, strict=True):
        if list(meta.bands) != bands:
            raise ModelError(
                f"ensemble members disagree on bands: {members[0].name} reads {bands}, "
                f"{member.name} reads {list(meta.bands)}"
            )
    return bands


def _summary(members: Sequence[EnsembleMember]) -> dict[str, Any]:
    scores = [float(m.metrics["mcc"]) for m in members if m.metrics.get("mcc") is not None]
    if not scores:
        return {"members": len(members)}
    return {
        "members": len(members),
        "member_mcc_mean": statistics.fmean(scores),
        "member_mcc_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
    }
