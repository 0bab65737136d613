"""Per-band normalisation: the statistics travel with datasets and models.

Inputs are standardised per band, ``(x - mean) / std``, and NaN (fill, ``glacier.data.fill``)
becomes 0 after that, i.e. the band mean. The same function serves the training loader and prediction;
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


def _mean_and_scale(stats: BandStats) -> tuple[np.ndarray, np.ndarray]:
    """(C, 1, 1) float32 mean and std, a constant band's std 0 replaced by 1 (not inf)."""
    mean = np.asarray(stats.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(stats.std, dtype=np.float32)[:, None, None]
    return mean, np.where(std > 0, std, 1.0).astype(np.float32)


def standardize(image: np.ndarray, stats: BandStats) -> np.ndarray:
    """``(x - mean) / std`` of a (C, H, W) image as float32; NaN (fill) stays NaN."""
    mean, std = _mean_and_scale(stats)
    # In place on one fresh copy: this runs per training sample (the loader's hot path).
    out = np.array(image, dtype=np.float32)
    out -= mean
    out /= std
    return out


def destandardize(values: np.ndarray, stats: BandStats) -> np.ndarray:
    """The raw values of standardised ``values``, ``z * std + mean``, as float32 (NaN stays)."""
    mean, std = _mean_and_scale(stats)
    out = np.array(values, dtype=np.float32)
    out *= std
    out += mean
    return out


def normalize(image: np.ndarray, stats: BandStats) -> np.ndarray:
    """Standardise a (C, H, W) float image with ``stats``; NaN becomes 0. Returns float32."""
    out = standardize(image, stats)
    np.copyto(out, 0.0, where=~np.isfinite(out))
    return out


def restandardize(values: np.ndarray, stored: BandStats, stats: BandStats) -> np.ndarray:
    """Values standardised with ``stored`` -> standardised with ``stats``, NaN -> 0; float32.

    The same as ``normalize`` of the raw image: ``(z * s1 + m1 - m2) / s2``. With equal
    statistics (training on the dataset's own) it is only the conversion to float32.
    """
    out = np.array(values, dtype=np.float32)
    if stored != stats:
        mean1, std1 = _mean_and_scale(stored)
        mean2, std2 = _mean_and_scale(stats)
        out *= std1 / std2
        out += (mean1 - mean2) / std2
    np.copyto(out, 0.0, where=~np.isfinite(out))
    return out
