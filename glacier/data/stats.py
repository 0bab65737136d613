"""Streaming, NaN-aware per-band statistics (mean and standard deviation).

Accumulated in float64 tile by tile with Chan et al.'s parallel update (count, mean, M2),
which stays accurate where a naive sum of squares would cancel catastrophically, and never
holds more than one tile in memory.
"""

from __future__ import annotations

import numpy as np

from glacier.normalization import BandStats


class RunningBandStats:
    """Accumulates per-band count, mean and sum of squared deviations over valid pixels."""

    def __init__(self, bands: tuple[str, ...] | list[str]) -> None:
        self.bands = tuple(bands)
        n = len(self.bands)
        self.count = np.zeros(n, dtype=np.float64)
        self.mean = np.zeros(n, dtype=np.float64)
        self.m2 = np.zeros(n, dtype=np.float64)

    def update(self, image: np.ndarray) -> None:
        """Add a (C, H, W) image; NaN pixels are skipped band by band."""
        flat = np.asarray(image, dtype=np.float64).reshape(len(self.bands), -1)
        valid = ~np.isnan(flat)
        n_b = valid.sum(axis=1).astype(np.float64)
        if not n_b.any():
            return
        sums = np.where(valid, flat, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_b = np.where(n_b > 0, sums / np.maximum(n_b, 1), 0.0)
        dev = np.where(valid, flat - mean_b[:, None], 0.0)
        m2_b = (dev * dev).sum(axis=1)
        total = self.count + n_b
        delta = mean_b - self.mean
        safe_total = np.maximum(total, 1)
        self.mean = self.mean + delta * n_b / safe_total
        self.m2 = self.m2 + m2_b + delta * delta * self.count * n_b / safe_total
        self.count = total

    def result(self) -> BandStats:
        """Mean and population standard deviation per band (0 and 1 for a band never seen)."""
        std = np.sqrt(self.m2 / np.maximum(self.count, 1))
        mean = np.where(self.count > 0, self.mean, 0.0)
        std = np.where(self.count > 0, std, 1.0)
        return BandStats(self.bands, tuple(float(v) for v in mean), tuple(float(v) for v in std))
