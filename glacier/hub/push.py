"""Push a model, ensemble or run folder to the Hugging Face Hub in one commit.

    push_folder(Path("runs/ft/best"), "me/glacier-unet")          # a model folder
    push_folder(Path("runs/ensemble"), "me/glacier-ensemble")     # members/ + ensemble.json
    push_folder(Path("runs/ft"), "me/glacier-unet", include_states=True)   # a run folder

What goes up is listed first (local checks, before any network call), then the repo is
created if needed and everything lands in ONE commit, with README.md regenerated from the
card template so the card shows the latest metrics. Local files are only read. A failed
push changes nothing on the Hub (no commit is made); running it again is safe: LFS files
the Hub already holds are not uploaded twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from glacier.ensemble_folder import ENSEMBLE_FILE, read_ensemble
from glacier.errors import HubError, ModelError
from glacier.hub.auth import hub_errors, require_token
from glacier.hub.card import render_model_card
from glacier.model_meta import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, read_model_meta

RUN_BEST = "best"
RUN_EXTRAS = ("cv_summary.json", "metrics.csv")
STATES_DIR = "states"
RETRY_HINT = "nothing was committed; run the same command again (files already on the Hub are not re-sent)"


@dataclass
class Upload:
    """What one push sends: repo paths -> local files, plus what the card is made from."""

    kind: str  # "model" | "ensemble" | "run"
    files: dict[str, Path] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    ensemble: dict | None = None
    cv_summary: dict | None = None

    @property
    def num_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files.values())


def create_repo_early(repo_id: str, private: bool = True) -> str:
    """Create the model repo (or find it existing) and return its URL.

    Call it when training starts, so that a bad repo id or token fails in seconds rather
    than after hours of training.
    """
    from huggingface_hub import HfApi

    _check_repo_id(repo_id)
    require_token(repo_id, "create")
    with hub_errors(repo_id, "create", retry_hint="run it again"):
        return str(HfApi().create_repo(repo_id, private=private, exist_ok=True))


def push_folder(
    folder: Path,
    repo_id: str,
    *,
    private: bool = True,
    revision: str | None = None,
    include_states: bool = False,
    commit_message: str | None = None,
) -> str:
    """Upload a model, ensemble or run folder to ``repo_id`` in one commit; return its URL.

    ``private`` applies when the repo is created (an existing repo keeps its visibility);
    ``revision`` is a branch, created from main if missing; ``include_states`` also sends
    a run folder's resumable training states (``states/``), which are large.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    upload = collect_upload(Path(folder), include_states=include_states)
    _check_repo_id(repo_id)
    card = render_model_card(
        upload.config, ensemble=upload.ensemble, cv_summary=upload.cv_summary, repo_id=repo_id
    )
    operations = [CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode("utf-8"))]
    operations += [
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f)) for p, f in sorted(upload.files.items())
    ]
    message = commit_message or f"Upload glacier {upload.kind} ({len(operations)} files)"

    require_token(repo_id, "push to")
    api = HfApi()
    with hub_errors(repo_id, "push to", retry_hint=RETRY_HINT):
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.create_commit(repo_id, operations, commit_message=message, revision=revision)
    return info.commit_url


# ------------------------------------------------------------------ what goes up
def collect_upload(folder: Path, include_states: bool = False) -> Upload:
    """List the files a push of ``folder`` sends, by folder kind; fail on anything else."""
    if not folder.is_dir():
        raise ModelError(f"{folder}: not found; give a model folder, an ensemble folder or a run folder")
    if (folder / ENSEMBLE_FILE).is_file():
        upload = _ensemble_upload(folder)
    elif (folder / CONFIG_FILE).is_file():
        upload = Upload("model", files=_model_files(folder), config=_model_config(folder))
    elif (folder / RUN_BEST / CONFIG_FILE).is_file():
        best = folder / RUN_BEST
        upload = Upload("run", files=_model_files(best), config=_model_config(best))
    else:
        raise ModelError(
            f"{folder}: not a model folder (model.safetensors + config.json), an ensemble folder "
            f"(ensemble.json) or a run folder (best/); nothing to push"
        )
    for name in RUN_EXTRAS:
        if (folder / name).is_file():
            upload.files[name] = folder / name
    if (folder / "cv_summary.json").is_file():
        upload.cv_summary = _read_json(folder / "cv_summary.json")
    if include_states:
        states = folder / STATES_DIR
        if not states.is_dir():
            raise ModelError(
                f"{folder}: --include-states given but there is no {STATES_DIR}/ folder (only run folders have one)"
            )
        for path in sorted(p for p in states.rglob("*") if p.is_file()):
            upload.files[path.relative_to(folder).as_posix()] = path
    return upload


def _model_files(model_dir: Path, prefix: str = "") -> dict[str, Path]:
    # README.md is not taken from disk: the card is regenerated at push time.
    return {f"{prefix}{name}": model_dir / name for name in (WEIGHTS_FILE, CONFIG_FILE)}


def _ensemble_upload(folder: Path) -> Upload:
    ensemble = read_ensemble(folder)  # checks the manifest and every member folder
    files = {ENSEMBLE_FILE: folder / ENSEMBLE_FILE}
    for member in ensemble["members"]:
        member_dir, prefix = Path(member["dir"]), Path(member["path"]).as_posix().rstrip("/") + "/"
        files.update(_model_files(member_dir, prefix=prefix))
        if (member_dir / CARD_FILE).is_file():
            files[prefix + CARD_FILE] = member_dir / CARD_FILE
    config = _model_config(Path(ensemble["members"][0]["dir"]))
    return Upload("ensemble", files=files, config=config, ensemble=ensemble)


def _model_config(model_dir: Path) -> dict:
    """The raw config.json of a checked model folder (the card renders from it)."""
    read_model_meta(model_dir)  # a clear ModelError for an incomplete or foreign folder
    return _read_json(model_dir / CONFIG_FILE)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise HubError(f"{repo_id!r} is not a valid Hub repo id (USER/NAME): {exc}") from None
