"""Pull models from the Hugging Face Hub through its cache.

    download_snapshot("me/glacier-unet")     # the cached snapshot folder (downloaded once)
    pull("me/glacier-unet", Path("model"))   # a plain folder at model/, ready for predict

Downloads go through huggingface_hub's cache (``snapshot_download``), so a second pull
costs nothing and works offline (``HF_HUB_OFFLINE=1``). Only the artifact's files come:
first ``config.json`` / ``ensemble.json`` say what the repo holds, then exactly the files
a push of it sends (weights, configs, cards, a run's metrics and states); anything else in
the repo stays on the Hub. A repo listing a file name that leads out of its folder
(``../x``) is refused before anything is fetched. What a snapshot is (model or ensemble,
or neither: a clear error) is ``glacier.artifacts.open_artifact``'s to decide.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from glacier import atomic
from glacier.artifacts import EnsembleFolder, ModelFolder
from glacier.artifacts.run import RECORD_FILES, STATES_DIR
from glacier.errors import HubError, ModelError
from glacier.hub.auth import check_repo_id, hub_errors, network_failure
from glacier.hub.push import RUN_EXTRAS
from glacier.outputs import OutputFolder, is_safe_relative, remove_empty_parents, require_kind

PULL_HINT = "run the same command again when the connection is back"
MODEL_FILES = (ModelFolder.CONFIG, ModelFolder.WEIGHTS, ModelFolder.BOUNDARY_HEAD, ModelFolder.CARD)
"""The files of a model folder a pull fetches (those present in the repo)."""
EXTRA_PATTERNS = (*RUN_EXTRAS, f"{STATES_DIR}/*", *RECORD_FILES, *(f"{name}/*" for name in RECORD_FILES))
"""A pushed run's files beside its model: metrics, the CV summary, resumable states and the
run's record (a file, or a folder of files)."""


def download_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """Download the artifact files of ``repo_id`` into the Hub cache (or find them there);
    the snapshot folder."""
    check_repo_id(repo_id)
    with hub_errors(repo_id, "pull", retry_hint=PULL_HINT):
        names = _listed_names(repo_id, revision)
        unsafe = sorted(n for n in names or () if not is_safe_relative(n))
        if unsafe:
            raise HubError(
                f"cannot pull {repo_id!r}: the repo lists file names that lead outside its folder "
                f"({', '.join(map(repr, unsafe[:3]))}); glacier fetches nothing from it"
            )
        described = _snapshot(repo_id, revision, [ModelFolder.CONFIG, EnsembleFolder.MANIFEST])
        return _snapshot(repo_id, revision, artifact_patterns(described, repo_id))


def artifact_patterns(snapshot: Path, repo_id: str) -> list[str]:
    """The repo files that make up the artifact whose ``config.json`` / ``ensemble.json`` are
    in ``snapshot``: an ensemble's manifest, card and members, or a model folder."""
    if not (snapshot / EnsembleFolder.MANIFEST).is_file():
        return [*MODEL_FILES, *EXTRA_PATTERNS]
    try:
        manifest = EnsembleFolder(snapshot).read_manifest()
    except ModelError as exc:
        raise HubError(f"{repo_id!r} is not a glacier model or ensemble: {exc}") from None
    members = [f"{entry['path'].rstrip('/')}/{name}" for entry in manifest["members"] for name in MODEL_FILES]
    return [EnsembleFolder.MANIFEST, EnsembleFolder.CARD, *members, *EXTRA_PATTERNS]


def _listed_names(repo_id: str, revision: str | None) -> list[str] | None:
    """The repo's file names, or None where the Hub cannot be asked (offline, unreachable,
    a server error): then the cache answers, with files checked when they were fetched."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        return None
    try:
        return HfApi().list_repo_files(repo_id, revision=revision)
    except HfHubHTTPError as exc:
        if exc.response is not None and exc.response.status_code >= 500:
            return None
        raise
    except Exception as exc:
        if network_failure(exc) is not None:
            return None
        raise


def _snapshot(repo_id: str, revision: str | None, patterns: list[str]) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except IncompleteSnapshotError as exc:
        raise HubError(
            f"cannot pull {repo_id!r}: the cached copy is incomplete and the Hub cannot be reached; {PULL_HINT}"
        ) from exc


def pull(repo_id: str, out: Path, revision: str | None = None) -> Path:
    """Pull ``repo_id`` and place its files in the plain folder ``out``; return ``out``.

    Files are hard-linked from the cache where the file system allows (no second copy of
    the weights), copied otherwise; glacier replaces files by renaming, never in place, so
    the cache stays intact. ``out`` may hold a user's own files: they stay. Files an earlier
    pull wrote there (its marker lists them) are replaced or removed; a file of the
    artifact's name that pull did not write is a HubError, nothing changed.
    """
    from glacier.artifacts.open import open_hub

    check_repo_id(repo_id)
    output = OutputFolder(require_kind(out, "folder", "--out"), "pull")
    artifact = open_hub(repo_id, revision)
    files = pulled_files(artifact)
    output.check_no_collision(files, "--out")
    _place(output, files)
    return output.path


def pulled_files(artifact: ModelFolder | EnsembleFolder) -> dict[str, Path]:
    """The snapshot files a pull places, by relative name: the artifact's files and cards,
    plus a pushed run's metrics, CV summary and states."""
    root = artifact.path
    if isinstance(artifact, EnsembleFolder):
        names = [EnsembleFolder.MANIFEST, EnsembleFolder.CARD]
        for entry in artifact.manifest["members"]:
            prefix = entry["path"].rstrip("/")
            member = ModelFolder(root / prefix)
            names += [f"{prefix}/{name}" for name in (*member.files(), ModelFolder.CARD)]
    else:
        names = [*artifact.files(), ModelFolder.CARD]
    names += list(RUN_EXTRAS)
    if (root / STATES_DIR).is_dir():
        names += [p.relative_to(root).as_posix() for p in (root / STATES_DIR).rglob("*") if p.is_file()]
    return {name: root / name for name in dict.fromkeys(names) if (root / name).is_file()}


def _place(output: OutputFolder, files: dict[str, Path]) -> None:
    """Put ``files`` into the output folder beside whatever else it holds.

    Every file is staged under a temporary name first, then renamed into place, so a
    failed download changes nothing; the marker is written before (listing old and new
    names) and after (the new ones), so that no file pull wrote is ever taken for a user's.
    """
    out, before = output.path, output.written()
    out.mkdir(parents=True, exist_ok=True)
    output.write_marker(out, before | set(files))
    staged: dict[str, Path] = {}
    try:
        for name, source in files.items():
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            staged[name] = atomic.temporary_sibling(target)
            link_or_copy(source.resolve(), staged[name])
        for name, tmp in staged.items():
            os.replace(tmp, out / name)
            # rename() does nothing when both names are links to one file (a file pulled
            # again unchanged, linked from the same cache blob): drop the extra name.
            tmp.unlink(missing_ok=True)
        staged.clear()
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    for name in sorted(before - set(files)):
        (out / name).unlink(missing_ok=True)
        remove_empty_parents(out / name, out)
    output.write_marker(out, files)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` (a cached file) to ``target``, or copy it across file systems.
    Safe because glacier replaces files by renaming, never writes them in place."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
