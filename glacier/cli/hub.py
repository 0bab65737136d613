"""CLI commands: push, pull (models through the Hugging Face Hub)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glacier.cli import app


@app.command("push")
def push(
    folder: Annotated[
        Path, typer.Argument(help="Model folder, ensemble folder or run folder (its best/ model).")
    ],
    repo_id: Annotated[str, typer.Argument(help="Hub repo id, USER/NAME (created if missing).")],
    private: Annotated[
        bool, typer.Option("--private/--public", help="Visibility of a newly created repo.")
    ] = True,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch to commit to (created from main).")
    ] = None,
    include_states: Annotated[
        bool, typer.Option("--include-states", help="Also upload a run folder's training states (states/).")
    ] = False,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")] = None,
) -> None:
    """Upload a trained model (or ensemble, or run) to the Hub in one commit, with a fresh model card.

    Authenticate with HF_TOKEN or `hf auth login`. Safe to re-run after a failure.
    """
    from glacier.hub import collect_upload, push_folder

    upload = collect_upload(folder, include_states=include_states)
    typer.echo(
        f"pushing {upload.kind} {folder} ({len(upload.files) + 1} files, {upload.num_bytes / 1e6:.1f} MB) to {repo_id}"
    )
    url = push_folder(
        folder,
        repo_id,
        private=private,
        revision=revision,
        include_states=include_states,
        commit_message=message,
    )
    typer.echo(f"pushed: {url}")


@app.command("pull")
def pull(
    repo_id: Annotated[str, typer.Argument(help="Hub repo id, USER/NAME.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to create (a model or ensemble folder).")],
    revision: Annotated[str | None, typer.Option("--revision", help="Branch, tag or commit.")] = None,
) -> None:
    """Download a model or ensemble from the Hub (through the HF cache; works offline once pulled)."""
    from glacier.hub import pull as pull_model

    folder = pull_model(repo_id, out, revision=revision)
    typer.echo(f"pulled {repo_id} -> {folder}")
