"""Push a model, ensemble or run folder to the Hugging Face Hub in one commit.

    push_folder(Path("runs/ft/best"), "me/glacier-unet")          # a model folder
    push_folder(Path("runs/ensemble"), "me/glacier-ensemble")     # members/ + ensemble.json
    push_folder(Path("runs/ft"), "me/glacier-unet", include_states=True)   # a run folder
    push_folder(Path("runs/ft"), "me/glacier-unet", include_states="latest", prune_states=True)

What goes up is listed first (local checks, before any network call), then the repo is
created if needed and everything lands in ONE commit, with README.md regenerated from the
card template so the card shows the latest metrics. Local files are only read. A failed
push changes nothing on the Hub (no commit is made); running it again is safe: LFS files
the Hub already holds are not uploaded twice.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from glacier.artifacts import MODEL_FORMAT_VERSION, EnsembleFolder, ModelFolder
from glacier.artifacts.open import open_local
from glacier.artifacts.run import METRICS_FILE, STATES_DIR, RunFolder
from glacier.errors import ModelError
from glacier.hub.auth import check_repo_id, hub_errors, require_token

RUN_EXTRAS = ("cv_summary.json", METRICS_FILE)
"""Files of a folder that go up beside its model (a run folder also sends its record:
``RunFolder.record_files``)."""
States = bool | Literal["latest"]
"""Which training states a run folder's push sends: none, all, or the newest only."""
RETRY_HINT = "nothing was committed; run the same command again (files already on the Hub are not re-sent)"


@dataclass
class Upload:
    """What one push sends: repo paths -> local files, plus what the card is made from."""

    kind: str  # "model" | "ensemble" | "run"
    artifact: ModelFolder | EnsembleFolder
    files: dict[str, Path] = field(default_factory=dict)
    cv_summary: dict | None = None
    states: bool = False
    staging: tempfile.TemporaryDirectory | None = None
    """Holds version-1 model folders converted to the current format for the upload."""

    @property
    def num_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files.values())

    def card(self, repo_id: str) -> str:
        return self.artifact.card(cv_summary=self.cv_summary, repo_id=repo_id, states=self.states)

    def close(self) -> None:
        if self.staging is not None:
            self.staging.cleanup()


def create_repo_early(repo_id: str, private: bool = True) -> str:
    """Create the model repo (or find it existing) and return its URL.

    Call it when training starts, so that a bad repo id or token fails in seconds rather
    than after hours of training.
    """
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    require_token(repo_id, "create")
    with hub_errors(repo_id, "create", retry_hint="run it again"):
        return str(HfApi().create_repo(repo_id, private=private, exist_ok=True))


def push_folder(
    folder: Path,
    repo_id: str,
    *,
    private: bool = True,
    revision: str | None = None,
    include_states: States = False,
    commit_message: str | None = None,
    prune_states: bool = False,
) -> str:
    """Upload a model, ensemble or run folder to ``repo_id`` in one commit; return its URL.

    ``private`` applies when the repo is created (an existing repo keeps its visibility);
    ``revision`` is a branch, created from main if missing; ``include_states`` also sends
    a run folder's resumable training states (``states/``), which are large: all of them
    (True) or the newest (``"latest"``). ``prune_states`` deletes, in the same commit, the
    repo's files under ``states/`` that this upload does not hold (older states).
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    upload = collect_upload(Path(folder), include_states=include_states)
    try:
        check_repo_id(repo_id)
        operations = [
            CommitOperationAdd(
                path_in_repo=ModelFolder.CARD, path_or_fileobj=upload.card(repo_id).encode("utf-8")
            )
        ]
        operations += [
            CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f))
            for p, f in sorted(upload.files.items())
        ]
        message = commit_message or f"Upload glacier {upload.kind} ({len(operations)} files)"
        require_token(repo_id, "push to")
        api = HfApi()
        with hub_errors(repo_id, "push to", retry_hint=RETRY_HINT):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision and revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            if prune_states:
                operations += _stale_states(api, repo_id, revision, upload)
            info = api.create_commit(repo_id, operations, commit_message=message, revision=revision)
    finally:
        upload.close()
    return info.commit_url


# ------------------------------------------------------------------ what goes up
def collect_upload(folder: Path, include_states: States = False) -> Upload:
    """List the files a push of ``folder`` sends, by what ``open_local`` finds; fail on anything else."""
    if not folder.is_dir():
        raise ModelError(f"{folder}: not found; give a model folder, an ensemble folder or a run folder")
    artifact = open_local(folder)
    base = getattr(artifact, "run_dir", None) or artifact.path
    upload = Upload("run" if base != artifact.path else artifact.kind, artifact)
    if isinstance(artifact, EnsembleFolder):
        upload.files[EnsembleFolder.MANIFEST] = artifact.path / EnsembleFolder.MANIFEST
        for entry in artifact.manifest["members"]:
            prefix = Path(entry["path"]).as_posix().rstrip("/") + "/"
            member = ModelFolder(artifact.path / entry["path"])
            upload.files.update(_model_files(member, upload, prefix))
            if (member.path / ModelFolder.CARD).is_file():
                upload.files[prefix + ModelFolder.CARD] = member.path / ModelFolder.CARD
    else:
        upload.files.update(_model_files(artifact, upload))
    for name in RUN_EXTRAS:
        if (base / name).is_file():
            upload.files[name] = base / name
    if upload.kind == "run":
        upload.files.update(RunFolder(base).record_files())
    if (base / "cv_summary.json").is_file():
        upload.cv_summary = _read_json(base / "cv_summary.json")
    if include_states:
        states = base / STATES_DIR
        if not states.is_dir():
            raise ModelError(
                f"{folder}: --include-states given but there is no {STATES_DIR}/ folder (only run folders have one)"
            )
        chosen = RunFolder(base).latest_state() if include_states == "latest" else states
        for path in sorted(p for p in chosen.rglob("*") if p.is_file()) if chosen else ():
            upload.files[path.relative_to(base).as_posix()] = path
        upload.states = any(name.startswith(STATES_DIR + "/") for name in upload.files)
    return upload


def _stale_states(api, repo_id: str, revision: str | None, upload: Upload) -> list:
    """Deletions of the repo's files under ``states/`` that ``upload`` does not send."""
    from huggingface_hub import CommitOperationDelete

    prefix = STATES_DIR + "/"
    on_hub = api.list_repo_files(repo_id, revision=revision)
    return [
        CommitOperationDelete(path_in_repo=path)
        for path in on_hub
        if path.startswith(prefix) and path not in upload.files
    ]


def _model_files(model: ModelFolder, upload: Upload, prefix: str = "") -> dict[str, Path]:
    """A model folder's files under ``prefix``; a version-1 folder is converted first, so that
    what lands on the Hub is smp-native. README.md is not taken: the card is written anew."""
    if model.meta.format_version < MODEL_FORMAT_VERSION:
        if upload.staging is None:
            upload.staging = tempfile.TemporaryDirectory(prefix="glacier-push-")
        model = model.upgrade_to(Path(upload.staging.name) / (prefix or "model"))
    return {f"{prefix}{name}": path for name, path in model.files().items()}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data
