"""Ship models through the Hugging Face Hub: push, pull, model cards.

Other modules call:

- ``resolve_model_dir(path_or_repo_id, revision=None) -> Path``: a local folder as is, or a
  Hub repo id pulled through the Hub cache (predict, export-submission, finetune --init-from).
- ``create_repo_early(repo_id, private=True) -> str``: fail fast on a bad id or token.
- ``push_folder(folder, repo_id, *, private, revision, include_states, commit_message) -> str``.
- ``pull(repo_id, out, revision=None) -> Path``: a plain folder at ``out``.
- ``render_model_card(config, *, ensemble=None, cv_summary=None) -> str``: README.md text.

Authentication is huggingface_hub's own (``HF_TOKEN`` or ``hf auth login``); the Hub
address is ``HF_ENDPOINT``. Failures are HubErrors saying which repo and what to do.
"""

from glacier.hub.card import render_model_card
from glacier.hub.pull import pull, resolve_model_dir
from glacier.hub.push import collect_upload, create_repo_early, push_folder

__all__ = [
    "collect_upload",
    "create_repo_early",
    "pull",
    "push_folder",
    "render_model_card",
    "resolve_model_dir",
]
