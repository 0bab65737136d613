"""``glacier inspect``: what a download holds, and what preprocess will do about each finding.

    report = inspect_source("Train")          # competition Train/ or Test/, HKH slices or raw scenes
    print(report.text())
    report.to_dict()                          # the same, for --json

Sizes and ids come from file headers (every image). Pixels are read from at most
``max_images`` images spread evenly over the set, raw scenes decimated to about
``pixels_per_scene`` pixels, so a 117 GB slice folder is inspected in a minute. Per band:
dtype, nodata tag, min / max / percentiles over valid pixels, the shares of fill, zeros,
NaN and inf, and the share at a saturation level (Landsat 7 saturates at 255 over snow).
Fill is the one rule of ``glacier.data.fill``; labels are counted per value (competition)
or per class (HKH, with the clean / debris check of ``glacier.data.mask_check``).
"""

from __future__ import annotations

from pathlib import Path

from glacier.audit.findings import findings
from glacier.audit.layouts import read_source
from glacier.audit.report import BandTally, Finding, InspectReport
from glacier.errors import DataError

__all__ = ["BandTally", "Finding", "InspectReport", "inspect_source"]


def inspect_source(
    src: str | Path, max_images: int = 200, pixels_per_scene: int = 1_000_000
) -> InspectReport:
    """Inspect the competition Train/ or Test/ folder, HKH slices or raw scenes in ``src``."""
    src = Path(src)
    if not src.is_dir():
        raise DataError(
            f"{src}: folder not found (expected a competition Train/ or Test/ folder, or HKH data)"
        )
    if max_images < 1:
        raise DataError(f"--max-images must be at least 1, got {max_images}")
    report = read_source(src, max_images, pixels_per_scene)
    report.findings = findings(report)
    return report
