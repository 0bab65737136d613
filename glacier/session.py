"""A notebook session's clock: when it started, when it ends, and how much of it a run may use.

A Kaggle session ends 12 hours after it starts, however many runs it holds. The set-up
(``scripts/kaggle_setup.sh``) records the start once per session in a small JSON file;
every ``fit`` then measures ``training.max_hours`` from that start instead of its own, and
never runs past the session's end minus a margin kept for the last save and push:

    python -m glacier.session record /kaggle/working/glacier_session.json   # the set-up
    GLACIER_SESSION_FILE=/kaggle/working/glacier_session.json  accelerate launch ...

Without ``GLACIER_SESSION_FILE`` (or without the file) nothing changes: each run's budget
starts with the run. The module needs only the standard library, so the set-up can record
the start before glacier and its dependencies are installed.

A rerun of the set-up in the same session keeps the recorded start. A file left by an
earlier session (a persisted or copied ``/kaggle/working``) is replaced: it was written
before this machine (on Kaggle: this session's container) started, or longer ago than a
session lasts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from glacier import atomic
from glacier.errors import GlacierError

SESSION_ENV = "GLACIER_SESSION_FILE"
"""The environment variable naming the session file (set by scripts/_common.sh)."""
FORMAT = "glacier-session"
KAGGLE_LIMIT_HOURS = 12.0
DEFAULT_MARGIN_MINUTES = 30.0
CLOCK_TOLERANCE_S = 60.0
"""A recorded start this much older than the machine's start is an earlier session's."""


@dataclasses.dataclass(frozen=True)
class Session:
    """One session: its start (Unix time), its length limit and the margin kept before it."""

    started_at: float
    limit_hours: float | None = KAGGLE_LIMIT_HOURS
    """None: the session has no end of its own (only ``training.max_hours`` applies)."""
    margin_minutes: float = DEFAULT_MARGIN_MINUTES
    """Kept free before the limit for a run's last state save and push."""

    def training_end(self, max_hours: float | None) -> float | None:
        """The Unix time by which a run with ``max_hours`` must stop (None: no end):
        ``max_hours`` after the session start, and ``margin_minutes`` before its limit."""
        ends = []
        if max_hours is not None:
            ends.append(self.started_at + max_hours * 3600.0)
        if self.limit_hours is not None:
            ends.append(self.started_at + self.limit_hours * 3600.0 - self.margin_minutes * 60.0)
        return min(ends) if ends else None

    def is_stale(self, now: float, machine_started_at: float | None) -> bool:
        """Whether this record belongs to an earlier session (see the module docstring)."""
        if machine_started_at is not None and self.started_at < machine_started_at - CLOCK_TOLERANCE_S:
            return True
        return self.limit_hours is not None and now - self.started_at > self.limit_hours * 3600.0

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "started_at": self.started_at,
            "started": clock_text(self.started_at),
            "limit_hours": self.limit_hours,
            "margin_minutes": self.margin_minutes,
        }

    @classmethod
    def read(cls, path: str | Path) -> Session:
        """The session recorded in ``path``; a GlacierError if it is not a session file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {FORMAT!r}")
            limit = data.get("limit_hours")
            return cls(
                started_at=float(data["started_at"]),
                limit_hours=None if limit is None else float(limit),
                margin_minutes=float(data.get("margin_minutes", DEFAULT_MARGIN_MINUTES)),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GlacierError(
                f"{path}: not a readable session record ({exc}); delete it and run "
                "scripts/kaggle_setup.sh again (it records the session start)"
            ) from None


def current_session(environ: Mapping[str, str] = os.environ) -> Session | None:
    """The session named by ``GLACIER_SESSION_FILE``; None when it is unset or the file
    does not exist (no session recorded: run budgets start with each run)."""
    name = environ.get(SESSION_ENV)
    if not name or not Path(name).is_file():
        return None
    return Session.read(name)


def record_session(
    path: str | Path,
    *,
    limit_hours: float | None = KAGGLE_LIMIT_HOURS,
    margin_minutes: float = DEFAULT_MARGIN_MINUTES,
    now: float | None = None,
    machine_started_at: float | None = None,
) -> tuple[Session, bool]:
    """Record that a session starts ``now`` in ``path``, unless ``path`` already holds this
    session's start; return the session and whether its start was kept from the file.

    A kept start keeps its clock; its limit and margin are updated to the values given.
    ``machine_started_at`` (default: read from /proc) tells an earlier session's file apart.
    """
    path = Path(path)
    now = time.time() if now is None else now
    machine = machine_start_time() if machine_started_at is None else machine_started_at
    kept = None
    if path.is_file():
        try:
            kept = Session.read(path)
        except GlacierError:
            kept = None  # unreadable: a new record replaces it
        if kept is not None and kept.is_stale(now, machine):
            kept = None
    started_at = kept.started_at if kept is not None else now
    session = Session(started_at, limit_hours, margin_minutes)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, session.to_dict())
    return session, kept is not None


def machine_start_time() -> float | None:
    """When this machine's first process (PID 1) started, in Unix time; in a container
    (a Kaggle session) that is the container's start. None where /proc cannot tell."""
    try:
        stat = Path("/proc/1/stat").read_text()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        # Fields after the command name "(...)" start at field 3; field 22 is the start
        # time in clock ticks since boot.
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def clock_text(unix_time: float) -> str:
    """``2025-01-31 14:05 UTC``: how times are shown to the user."""
    return datetime.fromtimestamp(unix_time, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def describe(session: Session, now: float | None = None) -> str:
    """One line: when the session started and ends, and how much is left."""
    now = time.time() if now is None else now
    text = f"session started {clock_text(session.started_at)} ({(now - session.started_at) / 3600:.2f} h ago)"
    if session.limit_hours is not None:
        end = session.started_at + session.limit_hours * 3600.0
        text += (
            f", ends {clock_text(end)} ({session.limit_hours:g} h); runs stop "
            f"{session.margin_minutes:g} min before that at the latest"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    """``python -m glacier.session record PATH [--limit-hours H] [--margin-minutes M]`` or
    ``python -m glacier.session show PATH``."""
    parser = argparse.ArgumentParser(prog="python -m glacier.session", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    record = sub.add_parser("record", help="record the session start (kept if this session's)")
    record.add_argument("path", type=Path)
    record.add_argument(
        "--limit-hours",
        type=float,
        default=KAGGLE_LIMIT_HOURS,
        help="session length (Kaggle: 12); 0: no limit",
    )
    record.add_argument("--margin-minutes", type=float, default=DEFAULT_MARGIN_MINUTES)
    show = sub.add_parser("show", help="print the recorded session")
    show.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "show":
            print(describe(Session.read(args.path)))
            return 0
        if args.margin_minutes < 0 or args.limit_hours < 0:
            raise GlacierError("--limit-hours and --margin-minutes cannot be negative")
        session, kept = record_session(
            args.path, limit_hours=args.limit_hours or None, margin_minutes=args.margin_minutes
        )
    except GlacierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    how = "kept from earlier in this session" if kept else "recorded now"
    print(f"{describe(session)} [{how}: {args.path}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
