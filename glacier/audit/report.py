"""What ``glacier inspect`` found: per-band tallies, the findings and the report that holds them."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glacier.audit.text import report_text
from glacier.data.mask_check import MaskCheckResult

SATURATION_LEVELS = (255, 4095, 65535)
"""Values sensors saturate at (8, 12 and 16 bits): a band whose maximum is one of them is checked."""
PERCENTILES = (1, 50, 99)
VALUES_KEPT = 20_000
"""Valid values kept per band and image for the percentiles."""


@dataclass
class BandTally:
    """What one band's pixels held, over every file read."""

    name: str
    dtypes: set[str] = field(default_factory=set)
    nodata: set[float] = field(default_factory=set)
    pixels: int = 0
    fill: int = 0
    zeros: int = 0
    valid_zeros: int = 0
    """Zeros outside fill: data (only a pixel 0 in every band is fill)."""
    nans: int = 0
    infs: int = 0
    infinite_files: list[str] = field(default_factory=list)
    valid: int = 0
    minimum: float = math.inf
    maximum: float = -math.inf
    at_level: dict[int, int] = field(default_factory=lambda: dict.fromkeys(SATURATION_LEVELS, 0))
    kept: list[np.ndarray] = field(default_factory=list)

    def add(self, raw: np.ndarray, fill: np.ndarray, nodata: float | None, source: str) -> None:
        """One band of one image: raw values (H, W) and the image's fill mask."""
        self.dtypes.add(str(raw.dtype))
        if nodata is not None:
            self.nodata.add(float(nodata))
        values = raw.astype(np.float64, copy=False)
        infinite = int(np.isinf(values).sum())
        if infinite:
            self.infinite_files.append(source)
        self.pixels += values.size
        self.fill += int(fill.sum())
        self.zeros += int((values == 0).sum())
        self.nans += int(np.isnan(values).sum())
        self.infs += infinite
        valid = values[~fill & np.isfinite(values)]
        self.valid += valid.size
        self.valid_zeros += int((valid == 0).sum())
        if valid.size:
            self.minimum, self.maximum = min(self.minimum, valid.min()), max(self.maximum, valid.max())
            for level in SATURATION_LEVELS:
                self.at_level[level] += int((valid == level).sum())
            step = max(1, valid.size // VALUES_KEPT)
            self.kept.append(valid[::step])

    def saturation(self) -> tuple[int | None, float]:
        """(the saturation level the band reaches, share of valid pixels at it), or (None, 0)."""
        level = int(self.maximum) if self.valid and self.maximum in SATURATION_LEVELS else None
        return level, (self.at_level[level] / self.valid if level is not None else 0.0)

    def to_dict(self) -> dict[str, Any]:
        kept = np.concatenate(self.kept) if self.kept else np.zeros(0)
        level, saturated = self.saturation()
        share = lambda n: round(n / max(self.pixels, 1), 6)  # noqa: E731
        return {
            "band": self.name,
            "dtype": "/".join(sorted(self.dtypes)),
            "nodata": sorted(self.nodata) or None,
            "min": float(self.minimum) if self.valid else None,
            "max": float(self.maximum) if self.valid else None,
            **{f"p{p}": float(np.percentile(kept, p)) if kept.size else None for p in PERCENTILES},
            "fill_fraction": share(self.fill),
            "zero_fraction": share(self.zeros),
            "zero_outside_fill_fraction": share(self.valid_zeros),
            "nan_fraction": share(self.nans),
            "inf_fraction": share(self.infs),
            "saturation_level": level,
            "saturated_fraction": round(saturated, 6),
        }


@dataclass(frozen=True)
class Finding:
    """One thing worth knowing, and what preprocess (or predict) does about it."""

    subject: str
    finding: str
    action: str

    def line(self) -> str:
        return f"{self.subject}: {self.finding} -> {self.action}"


@dataclass
class InspectReport:
    """Everything ``glacier inspect`` found in one source folder."""

    source: Path
    layout: str
    ids: list[str]
    sizes: Counter
    images_read: int
    sampling: str
    bands: list[BandTally]
    fill_pixels: int
    pixels: int
    images_with_fill: int
    labels: dict[str, int] | None
    """Pixel count per label value (competition) or class (HKH); None without labels."""
    labelled_at_fill: int = 0
    """Pixels labelled as a glacier class that are fill (they are ignored)."""
    stray_labels: list[tuple[float, int]] = field(default_factory=list)
    mask_check: MaskCheckResult | None = None
    layout_findings: list[Finding] = field(default_factory=list)
    """Findings of the file layout itself (a scene without CRS, stray mask values)."""
    findings: list[Finding] = field(default_factory=list)

    @property
    def fill_fraction(self) -> float:
        return self.fill_pixels / max(self.pixels, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "layout": self.layout,
            "images": len(self.ids),
            "ids": self.ids,
            "sizes": [{"height": h, "width": w, "images": n} for (h, w), n in sorted(self.sizes.items())],
            "images_read": self.images_read,
            "sampling": self.sampling,
            "fill_fraction": round(self.fill_fraction, 6),
            "images_with_fill": self.images_with_fill,
            "bands": [band.to_dict() for band in self.bands],
            "labels": self.labels,
            "glacier_labels_at_fill": self.labelled_at_fill,
            "stray_labels": [{"value": v, "pixels": n} for v, n in self.stray_labels],
            "mask_check": None if self.mask_check is None else self.mask_check.to_dict(),
            "findings": [vars(f) for f in self.findings],
        }

    def text(self) -> str:
        """The report as a terminal prints it."""
        return report_text(self)
