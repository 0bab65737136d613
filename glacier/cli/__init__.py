"""The `glacier` command line: one Typer app; each command module registers its commands.

Commands parse and validate their options, then call one library function; the library
never imports Typer. ``main(argv)`` turns user errors (GlacierError) into one clear line on
stderr and exit code 1, without a traceback.
"""

from __future__ import annotations

import sys

import typer

from glacier.errors import GlacierError

# The base of the usage errors ("No such option", "Missing argument"): click's own class
# while typer runs on click, the class of typer's private copy of click in later releases
# (typer 0.29 has no dependency on click). typer.BadParameter derives from it in both.
USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

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
        status = app(args=argv, prog_name="glacier", standalone_mode=False)
    except GlacierError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.secho("aborted", err=True)
        sys.exit(130)
    except USAGE_ERROR as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    # Without standalone mode an exit code comes back as the return value (--help: 0; a
    # Ctrl-C under typer 0.29, which turns it into exit code 130 itself).
    if status == 130:
        typer.secho("interrupted", err=True)
    sys.exit(status if isinstance(status, int) else 0)
