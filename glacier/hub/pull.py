"""Pull models from the Hugging Face Hub through its cache.

    download_snapshot("me/glacier-unet")     # the cached snapshot folder (downloaded once)
    pull("me/glacier-unet", Path("model"))   # a plain folder at model/, ready for predict

Downloads go through huggingface_hub's cache (``snapshot_download``), so a second pull
costs nothing and works offline (``HF_HUB_OFFLINE=1``). What a snapshot is (model or
ensemble, or neither: a clear error) is ``glacier.artifacts.open_artifact``'s to decide.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from glacier import atomic
from glacier.errors import HubError
from glacier.hub.auth import hub_errors

PULL_HINT = "run the same command again when the connection is back"


def download_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """Download ``repo_id`` into the Hub cache (or find it there); the snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError

    with hub_errors(repo_id, "pull", retry_hint=PULL_HINT):
        try:
            return Path(snapshot_download(repo_id, revision=revision))
        except IncompleteSnapshotError as exc:
            raise HubError(
                f"cannot pull {repo_id!r}: the cached copy is incomplete and the Hub cannot be reached; {PULL_HINT}"
            ) from exc


def pull(repo_id: str, out: Path, revision: str | None = None) -> Path:
    """Pull ``repo_id`` and place it as a plain folder at ``out`` (atomically); return ``out``.

    Files are hard-linked from the cache where the file system allows (no second copy of
    the weights), copied otherwise. glacier replaces files by renaming, never in place, so
    the cache stays intact. An existing ``out`` is replaced only if it is empty or itself a
    model/ensemble folder.
    """
    from glacier.artifacts import EnsembleFolder, ModelFolder
    from glacier.artifacts.open import open_hub

    out = Path(out)
    replaceable = not out.exists() or (out.is_dir() and not any(out.iterdir()))
    if not (replaceable or ModelFolder.found_at(out) or EnsembleFolder.found_at(out)):
        raise HubError(f"{out}: exists and is not a model or ensemble folder; choose another --out")
    source = open_hub(repo_id, revision).path
    with atomic.atomic_dir(out) as tmp:
        for path in sorted(source.rglob("*")):
            target = tmp / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(path.resolve(), target)
    return out


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` (a cached file) to ``target``, or copy it across file systems.
    Safe because glacier replaces files by renaming, never writes them in place."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
