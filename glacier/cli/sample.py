"""CLI commands: sample-data (placeholder until its issue lands)."""

from glacier.cli import app  # noqa: F401
