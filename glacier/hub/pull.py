"""Pull models from the Hugging Face Hub through its cache.

    resolve_model_dir("runs/ft/best")        # a local folder: returned as is
    resolve_model_dir("me/glacier-unet")     # a Hub id: the cached snapshot (downloaded once)
    pull("me/glacier-unet", Path("model"))   # a plain folder at model/, ready for predict

Downloads go through huggingface_hub's cache (``snapshot_download``), so a second pull
costs nothing and works offline (``HF_HUB_OFFLINE=1``). What was pulled must be a model or
ensemble folder; anything else is a clear error.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from glacier import atomic
from glacier.ensemble_folder import ENSEMBLE_FILE, read_ensemble
from glacier.errors import HubError, ModelError
from glacier.hub.auth import hub_errors
from glacier.model_meta import CONFIG_FILE, WEIGHTS_FILE, read_model_meta

PULL_HINT = "run the same command again when the connection is back"


def resolve_model_dir(path_or_repo_id: str, revision: str | None = None) -> Path:
    """A local model/ensemble folder as is, or a Hub repo id pulled into the Hub cache.

    Raises a HubError when ``path_or_repo_id`` is neither an existing path nor a repo the
    Hub (or, offline, the cache) can provide, saying which it tried.
    """
    path = Path(path_or_repo_id).expanduser()
    if path.exists():
        return path
    if not _looks_like_repo_id(path_or_repo_id):
        raise HubError(
            f"{path_or_repo_id!r}: no such local folder, and it is not a Hub repo id (USER/NAME) either"
        )
    try:
        return snapshot(path_or_repo_id, revision)
    except HubError as exc:
        raise HubError(f"{path_or_repo_id!r} is not a local folder, and as a Hub repo id: {exc}") from None


def snapshot(repo_id: str, revision: str | None = None) -> Path:
    """Download ``repo_id`` into the Hub cache (or find it there) and check it is a model."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError

    with hub_errors(repo_id, "pull", retry_hint=PULL_HINT):
        try:
            folder = Path(snapshot_download(repo_id, revision=revision))
        except IncompleteSnapshotError as exc:
            raise HubError(
                f"cannot pull {repo_id!r}: the cached copy is incomplete and the Hub cannot be reached; {PULL_HINT}"
            ) from exc
    check_model_repo(folder, repo_id)
    return folder


def pull(repo_id: str, out: Path, revision: str | None = None) -> Path:
    """Pull ``repo_id`` and place it as a plain folder at ``out`` (atomically); return ``out``.

    Files are hard-linked from the cache where the file system allows (no second copy of
    the weights), copied otherwise. glacier replaces files by renaming, never in place, so
    the cache stays intact. An existing ``out`` is replaced only if it is empty or itself a
    model/ensemble folder.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and model_kind(out) is None)):
        raise HubError(f"{out}: exists and is not a model or ensemble folder; choose another --out")
    source = snapshot(repo_id, revision)
    with atomic.atomic_dir(out) as tmp:
        for path in sorted(source.rglob("*")):
            target = tmp / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(path.resolve(), target)
    return out


def model_kind(folder: Path) -> str | None:
    """``"model"``, ``"ensemble"`` or None for anything else (by the folder's files)."""
    if (folder / ENSEMBLE_FILE).is_file():
        return "ensemble"
    if (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
        return "model"
    return None


def check_model_repo(folder: Path, repo_id: str) -> str:
    """Check a pulled snapshot is a usable model or ensemble folder; return its kind."""
    kind = model_kind(folder)
    if kind is None:
        found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())[:10]
        raise HubError(
            f"{repo_id!r} is not a glacier model: it has neither {WEIGHTS_FILE} + {CONFIG_FILE} nor "
            f"{ENSEMBLE_FILE} (files: {', '.join(found) or 'none'}); push one with `glacier push`"
        )
    try:
        if kind == "model":
            read_model_meta(folder)
        else:
            read_ensemble(folder)
    except ModelError as exc:
        raise HubError(f"{repo_id!r} is not a usable glacier {kind}: {exc}") from None
    return kind


def _looks_like_repo_id(text: str) -> bool:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if text.startswith((".", "/", "~")) or text.endswith("/") or "\\" in text:
        return False
    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
