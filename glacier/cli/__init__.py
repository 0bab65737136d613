"""The `glacier` command line: one Typer app; each command module registers its commands.

Commands parse and validate their options, then call one library function; the library
never imports Typer. ``main(argv)`` turns user errors (GlacierError) into one clear line on
stderr and exit code 1, without a traceback.
"""

from __future__ import annotations

import sys

import click
import typer

from glacier.errors import GlacierError

app = typer.Typer(
    name="glacier",
    help="Train, ensemble, ship and serve glacier segmentation models for multispectral satellite tiles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _register_commands() -> None:
    # Imported here so that `glacier --help` stays fast: command modules import torch lazily.
    from glacier.cli import data, demo, evaluate, hub, predict, sample, train  # noqa: F401


@app.callback()
def _root() -> None:
    """Train, ensemble, ship and serve glacier segmentation models for multispectral satellite tiles.

    Workflow: sample-data or your data -> preprocess -> pretrain (HKH) -> finetune (5-fold CV)
    -> ensemble -> predict -> evaluate -> export-submission -> push / pull.
    """


def main(argv: list[str] | None = None) -> None:
    """Run the CLI with ``argv`` (default: sys.argv[1:]) and exit with its status."""
    _register_commands()
    try:
        app(args=argv, prog_name="glacier", standalone_mode=False)
    except GlacierError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        typer.secho("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
