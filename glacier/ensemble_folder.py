"""The ensemble folder: several model folders that predict together (docs/ARCHITECTURE.md).

    ENSEMBLE_DIR/
      ensemble.json     {"format": "glacier-ensemble", "format_version": 1, "bands": [...],
                         "members": [{"name", "path", "seed", "fold", "metrics"}], "metrics": {...}}
      members/<name>/   model folders
      README.md

Training writes it (``glacier ensemble``); prediction, export and the Hub read it. It only
reads and writes JSON and copies folders, so reading it imports no torch. ``ensemble.json``
is written last: a folder without it is not (yet) an ensemble.
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
from glacier.errors import ModelError
from glacier.model_meta import read_model_meta

ENSEMBLE_FORMAT = "glacier-ensemble"
ENSEMBLE_FORMAT_VERSION = 1
ENSEMBLE_FILE = "ensemble.json"
MEMBERS_DIR = "members"
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


def is_ensemble_folder(path: str | Path) -> bool:
    """True if ``path`` holds an ``ensemble.json`` of the glacier-ensemble format."""
    try:
        data = json.loads((Path(path) / ENSEMBLE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == ENSEMBLE_FORMAT


def _summary(members: Sequence[EnsembleMember]) -> dict[str, Any]:
    scores = [float(m.metrics["mcc"]) for m in members if m.metrics.get("mcc") is not None]
    if not scores:
        return {"members": len(members)}
    return {
        "members": len(members),
        "member_mcc_mean": statistics.fmean(scores),
        "member_mcc_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
    }


def write_ensemble(
    folder: str | Path,
    members: Sequence[EnsembleMember],
    *,
    move: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Copy (or ``move``) the members' model folders into ``folder/members/<name>`` and write
    ``ensemble.json`` and a README. All members must read the same bands. ``extra`` adds
    keys to ensemble.json (e.g. the training config). Returns ``folder``."""
    folder = Path(folder)
    if not members:
        raise ModelError(f"{folder}: an ensemble needs at least one member")
    names = [m.name for m in members]
    bad = [n for n in names if not _SAFE_NAME.match(n)]
    if bad or len(set(names)) != len(names):
        raise ModelError(f"ensemble member names must be unique folder names, got {names}")
    metas = [read_model_meta(m.model_dir) for m in members]
    bands = list(metas[0].bands)
    for member, meta in zip(members, metas, strict=True):
        if list(meta.bands) != bands:
            raise ModelError(
                f"ensemble members disagree on bands: {members[0].name} reads {bands}, "
                f"{member.name} reads {list(meta.bands)}"
            )
    entries = []
    for member in members:
        target = folder / MEMBERS_DIR / member.name
        source = Path(member.model_dir)
        if source.resolve() != target.resolve():
            with atomic.atomic_dir(target) as tmp:
                if move:
                    shutil.rmtree(tmp)
                    shutil.move(str(source), str(tmp))
                else:
                    shutil.copytree(source, tmp, dirs_exist_ok=True)
        entries.append(
            {
                "name": member.name,
                "path": f"{MEMBERS_DIR}/{member.name}",
                "seed": member.seed,
                "fold": member.fold,
                "metrics": member.metrics,
            }
        )
    manifest = {
        "format": ENSEMBLE_FORMAT,
        "format_version": ENSEMBLE_FORMAT_VERSION,
        "bands": bands,
        "members": entries,
        "metrics": _summary(members),
        **(extra or {}),
    }
    atomic.write_text(folder / "README.md", _readme(manifest))
    atomic.write_json(folder / ENSEMBLE_FILE, manifest)
    return folder


def read_ensemble(path: str | Path) -> dict[str, Any]:
    """Read and check ``ensemble.json``; every member folder must exist and be a model folder.

    Returns the manifest, with each member's absolute folder added as ``member["dir"]``.
    """
    folder = Path(path)
    manifest_path = folder / ENSEMBLE_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except OSError:
        raise ModelError(
            f"{manifest_path}: missing; is {folder} an ensemble folder (glacier ensemble writes one)?"
        ) from None
    except ValueError as exc:
        raise ModelError(f"{manifest_path}: not valid JSON ({exc}); the ensemble folder is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != ENSEMBLE_FORMAT:
        raise ModelError(f"{manifest_path}: not a glacier ensemble (format is not {ENSEMBLE_FORMAT!r})")
    if int(manifest.get("format_version", 0)) > ENSEMBLE_FORMAT_VERSION:
        raise ModelError(
            f"{manifest_path}: format_version {manifest['format_version']} is newer than this glacier reads; upgrade glacier"
        )
    members = manifest.get("members")
    if not isinstance(members, list) or not members:
        raise ModelError(f"{manifest_path}: no members listed")
    for member in members:
        rel = Path(str(member.get("path", "")))
        member_dir = (folder / rel).resolve()
        if rel.is_absolute() or folder.resolve() not in member_dir.parents:
            raise ModelError(
                f"{manifest_path}: member path {str(rel)!r} must be a sub-folder of the ensemble"
            )
        meta = read_model_meta(member_dir)
        if list(meta.bands) != manifest.get("bands"):
            raise ModelError(
                f"{manifest_path}: member {member.get('name')!r} reads bands {list(meta.bands)}, "
                f"the ensemble says {manifest.get('bands')}"
            )
        member["dir"] = str(member_dir)
    return manifest


def _readme(manifest: dict[str, Any]) -> str:
    lines = [
        "# Glacier segmentation ensemble",
        "",
        f"{len(manifest['members'])} models that predict together (softmax average); bands "
        f"{', '.join(manifest['bands'])}.",
        "",
        "    glacier predict THIS_FOLDER BAND_FOLDERS_DIR --out PREDICTIONS",
        "",
        "| member | seed | fold | val MCC |",
        "| --- | --- | --- | --- |",
    ]
    for m in manifest["members"]:
        mcc = m["metrics"].get("mcc")
        lines.append(
            f"| {m['name']} | {m['seed']} | {'all' if m['fold'] is None else m['fold']} | "
            f"{'-' if mcc is None else f'{mcc:.4f}'} |"
        )
    summary = manifest["metrics"]
    if "member_mcc_mean" in summary:
        lines += [
            "",
            f"Member validation MCC: {summary['member_mcc_mean']:.4f} ± {summary['member_mcc_std']:.4f}.",
        ]
    return "\n".join(lines) + "\n"
