"""The competition submission: the standalone solution.py template, the exporter and its self-check."""

from glacier.submission.export import MAX_PACKAGE_BYTES, export_submission

__all__ = ["MAX_PACKAGE_BYTES", "export_submission"]
