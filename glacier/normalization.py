"""Per-band normalisation: the statistics travel with datasets and models.

Inputs are standardised per band, ``(x - mean) / std``, and NaN (no data) becomes 0 after
that, i.e. the band mean. The same function serves the training loader and prediction;
the exported submission script repeats these two lines because it cannot import glacier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glacier.errors import DataError


@dataclass(frozen=True)
class BandStats:
    """Per-band mean and standard deviation, in band order."""

    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.bands) == len(self.mean) == len(self.std)):
            raise DataError(
                f"band statistics disagree in length: {len(self.bands)} bands, "
                f"{len(self.mean)} means, {len(self.std)} stds"
            )

    def select(self, bands: tuple[str, ...] | list[str]) -> BandStats:
        """Statistics for a subset (or reordering) of the bands, by name."""
        missing = [b for b in bands if b not in self.bands]
        if missing:
            raise DataError(f"no statistics for bands {missing}; available: {list(self.bands)}")
        idx = [self.bands.index(b) for b in bands]
        return BandStats(tuple(bands), tuple(self.mean[i] for i in idx), tuple(self.std[i] for i in idx))

    def to_dict(self) -> dict:
        return {"bands": list(self.bands), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> BandStats:
        return cls(
            tuple(data["bands"]), tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"])
        )


def normalize(image: np.ndarray, stats: BandStats) -> np.ndarray:
    """Standardise a (C, H, W) float image with ``stats``; NaN becomes 0. Returns float32."""
    mean = np.asarray(stats.mean, dtype=np.float32)[:, None, None]
    # A constant band has std 0: divide by 1 instead of producing inf.
    std = np.asarray(stats.std, dtype=np.float32)[:, None, None]
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    # In place on one fresh copy: this runs per training sample (the loader's hot path).
    out = np.array(image, dtype=np.float32)
    out -= mean
    out /= std
    np.copyto(out, 0.0, where=~np.isfinite(out))
    return out
