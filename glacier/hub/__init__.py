"""Ship models through the Hugging Face Hub: push and pull.

Other modules call:

- ``create_repo_early(repo_id, private=True) -> str``: fail fast on a bad id or token.
- ``collect_upload(folder, include_states=False) -> Upload``: what a push would send.
- ``push_folder(folder, repo_id, *, private, revision, include_states, commit_message) -> str``.
- ``pull(repo_id, out, revision=None) -> Path``: a plain folder at ``out``.

What a Hub id names (a model or an ensemble) is ``glacier.artifacts.open_artifact``'s to
decide; cards come from ``glacier.artifacts.render_card``. Authentication is
huggingface_hub's own (``HF_TOKEN`` or ``hf auth login``); the Hub address is
``HF_ENDPOINT``. Failures are HubErrors saying which repo and what to do.
"""

from glacier.hub.pull import download_snapshot, pull
from glacier.hub.push import collect_upload, create_repo_early, push_folder

__all__ = [
    "collect_upload",
    "create_repo_early",
    "download_snapshot",
    "pull",
    "push_folder",
]
