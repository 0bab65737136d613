"""What a path or a Hub id names: the one place that decides it.

    open_artifact("runs/ft/best")        # ModelFolder
    open_artifact("runs/ensemble")       # EnsembleFolder
    open_artifact("runs/ft")             # a run folder: ModelFolder of its best/ (run_dir set)
    open_artifact("me/glacier-unet")     # a Hub repo, pulled through the Hub cache

predict, export-submission, ``--init-from``, push and pull all open what they are given
here. Opening checks the metadata (``verify()``) and imports no torch; a Hub id needs
huggingface_hub, imported only then.
"""

from __future__ import annotations

from pathlib import Path

from glacier.artifacts.ensemble import EnsembleFolder
from glacier.artifacts.model import ModelFolder
from glacier.artifacts.run import BEST_DIR
from glacier.errors import HubError, ModelError

Artifact = ModelFolder | EnsembleFolder


def open_artifact(
    path_or_hub_id: str | Path, *, revision: str | None = None, hub: bool = True
) -> ModelFolder | EnsembleFolder:
    """The checked model or ensemble folder that ``path_or_hub_id`` names.

    An existing local path is a model folder, an ensemble folder or a run folder (its
    ``best/`` model); anything else is taken as a Hub repo id (unless ``hub`` is False) and
    pulled through the Hub cache at ``revision``. A ModelError or HubError says what was
    tried and what to do.
    """
    path = Path(path_or_hub_id).expanduser()
    if path.exists():
        return open_local(path)
    text = str(path_or_hub_id)
    if not hub or not looks_like_repo_id(text):
        also = " (USER/NAME) either" if hub else ""
        raise HubError(f"{text!r}: no such local folder, and it is not a Hub repo id{also}")
    try:
        return open_hub(text, revision)
    except HubError as exc:
        raise HubError(f"{text!r} is not a local folder, and as a Hub repo id: {exc}") from None


def open_hub(repo_id: str, revision: str | None = None) -> ModelFolder | EnsembleFolder:
    """The checked model or ensemble of Hub repo ``repo_id``, pulled through the Hub cache."""
    from glacier.hub.pull import download_snapshot

    snapshot = download_snapshot(repo_id, revision)
    try:
        return open_local(snapshot, repo_id=repo_id, revision=revision)
    except ModelError as exc:
        raise HubError(f"{repo_id!r} is not a glacier model or ensemble: {exc}") from None


def open_local(
    path: Path, *, repo_id: str | None = None, revision: str | None = None
) -> ModelFolder | EnsembleFolder:
    """The checked artifact in the local folder ``path`` (see ``open_artifact``)."""
    artifact: ModelFolder | EnsembleFolder
    if EnsembleFolder.found_at(path):
        artifact = EnsembleFolder(path, repo_id=repo_id, revision=revision)
    elif ModelFolder.found_at(path):
        artifact = ModelFolder(path, repo_id=repo_id, revision=revision)
    elif repo_id is None and ModelFolder.found_at(path / BEST_DIR):
        artifact = ModelFolder(path / BEST_DIR, run_dir=path)
    else:
        raise ModelError(_not_an_artifact(path, repo_id))
    artifact.verify()
    return artifact


def _not_an_artifact(path: Path, repo_id: str | None) -> str:
    if not path.is_dir():
        return f"{path}: not a folder; give a model folder, an ensemble folder or a run folder"
    found = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())[:10]
    kinds = (
        f"a model folder ({ModelFolder.CONFIG} + {ModelFolder.WEIGHTS}) or an ensemble folder "
        f"({EnsembleFolder.MANIFEST})"
    )
    if repo_id is None:
        kinds += f" or a run folder ({BEST_DIR}/)"
    hint = (
        "push one with `glacier push`" if repo_id else "point to the output of glacier finetune or ensemble"
    )
    return f"{path}: not {kinds} (files: {', '.join(found) or 'none'}); {hint}"


def looks_like_repo_id(text: str) -> bool:
    """True if ``text`` is a syntactically valid Hub repo id (and not a relative path like ./x)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if text.startswith((".", "/", "~")) or text.endswith("/") or "\\" in text:
        return False
    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True
