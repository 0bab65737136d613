"""The `glacier` command line: one Typer app; each command module registers its commands.

Commands parse and validate their options, then call one library function; the library
never imports Typer. ``main(argv)`` turns every failure a user can cause (GlacierError from
the library, a usage error from the parser, a full disk or a permission problem) into one
``error:`` line on stderr and exit status 1, without a traceback. Exit statuses: 0 done,
1 error, 3 a training run stopped with a state saved (resume it), 130 Ctrl-C; see
docs/troubleshooting.md.
"""

from __future__ import annotations

import errno
import sys
from typing import Annotated

import typer

from glacier import __version__
from glacier.atomic import final_path
from glacier.errors import GlacierError

EXIT_OK = 0
EXIT_ERROR = 1
"""A user error (bad input, bad option, missing file) or a failed command: one ``error:`` line."""
EXIT_STOPPED = 3
"""A training run stopped before its last epoch on purpose (SIGTERM, SIGINT, training.max_hours)
with a state saved: run the same command with ``--resume latest`` to continue it."""
EXIT_INTERRUPTED = 130
"""Ctrl-C outside training (the shell's convention, 128 + SIGINT)."""
_ENVIRONMENT_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)
"""OSErrors a user fixes (disk full, no permission, read-only): one line, not a traceback."""

app = typer.Typer(
    name="glacier",
    help="Train, ensemble, ship and serve glacier segmentation models for multispectral satellite tiles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _register_commands() -> None:
    # Imported here so that `glacier --help` stays fast: command modules import torch lazily.
    from glacier.cli import data, demo, evaluate, hub, inspect_data, predict, sample, train  # noqa: F401


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"glacier {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print glacier's version and exit."
        ),
    ] = False,
) -> None:
    """Train, ensemble, ship and serve glacier segmentation models for multispectral satellite tiles.

    Workflow: inspect your data -> preprocess -> pretrain (HKH) -> finetune (5-fold CV)
    -> ensemble -> predict -> evaluate -> export-submission -> push / pull.
    """


def _click_exception_base() -> type[Exception]:
    """The ClickException class of the click that typer runs on.

    typer up to 0.2x runs on the standalone ``click``; newer releases bundle their own copy
    (``typer._click``) whose exceptions are not the standalone ones. Both descend from a
    class named ClickException, which typer's public BadParameter inherits.
    """
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    return typer.BadParameter  # pragma: no cover - every typer release has one


def usage_error_line(exc: Exception) -> str:
    """One line for a parser error: what is wrong and where to read the command's options."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "glacier"
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    message = " ".join(message.split()) or "invalid command line"
    if type(exc).__name__ == "NoArgsIsHelpError":
        message = "no command given" if command == "glacier" else "no arguments given"
    return f"{command}: {message} (see `{command} --help`)"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI with ``argv`` (default: sys.argv[1:]) and exit with its status."""
    _register_commands()
    click_exception = _click_exception_base()
    try:
        # Outside standalone mode click returns a typer.Exit's status instead of raising it.
        status = app(args=argv, prog_name="glacier", standalone_mode=False)
    except GlacierError as exc:
        _fail(str(exc))
    except typer.Exit as exc:
        sys.exit(getattr(exc, "exit_code", EXIT_OK))
    except typer.Abort:
        typer.secho("aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click_exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            typer.echo(exc.ctx.get_help())  # bare `glacier`: show what there is to run
        _fail(usage_error_line(exc))
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRORS:
            raise
        _fail(os_error_line(exc))
    sys.exit(status if isinstance(status, int) else EXIT_OK)


def os_error_line(exc: OSError) -> str:
    """One line for an OSError the user can fix: the file, what happened, what to do."""
    where = final_path(exc.filename) if exc.filename else "a file"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}: no space left on the device ({exc.strerror}); free some space and run it again"
    if exc.errno == errno.EROFS:
        return f"{where}: the file system is read-only ({exc.strerror}); write somewhere writable (--out)"
    return f"{where}: permission denied ({exc.strerror}); check the file's owner and permissions"


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    sys.exit(EXIT_ERROR)
