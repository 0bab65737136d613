"""The HKH label check: do the pixels labelled debris look like debris, and clean ice like ice?

Clean ice and snow are bright in green and dark in SWIR-1, so their snow index
NDSI = (green - swir1) / (green + swir1) is high (above about 0.4); debris-covered ice looks
like rock (NDSI near 0 or below) and is warmer in the thermal band than clean ice. When the
pixels labelled debris have the higher snow index and are the colder ones, the two label
layers (slice mask channels or polygon files) were given the other way round: the original
pipeline's configs disagree about their order in places.

    check = MaskCheck(bands)
    for image, mask in tiles:            # raw values, class indices (1 clean, 2 debris)
        check.update(image, mask)
    result = check.result()              # result.status: ok, swapped, mixed or skipped
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

CLEAN, DEBRIS = 1, 2
MIN_PIXELS = 50
"""Fewer labelled pixels of a class than this: the means say nothing, the check is skipped."""


@dataclass(frozen=True)
class MaskCheckResult:
    """The means per label and what they say."""

    status: str
    """``ok`` (debris darker in NDSI and warmer), ``swapped`` (every available sign says the
    other way round), ``mixed`` (the signs disagree) or ``skipped`` (``note`` says why)."""
    clean: dict
    """``{"pixels", "ndsi", "tir"}`` of the pixels labelled clean ice (None where not measured)."""
    debris: dict
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def figures(self) -> str:
        """The means of both labels, in words."""
        return f"{_figures(self.debris, 'debris')}; {_figures(self.clean, 'clean ice')}"

    def describe(self) -> str:
        """One line: the verdict and its figures."""
        if self.status == "skipped":
            return f"mask check skipped: {self.note}"
        return f"mask check {self.status}: {self.figures()}"


def _figures(means: dict, label: str) -> str:
    parts = [f"{means['pixels']} px labelled {label}"]
    if means["ndsi"] is not None:
        parts.append(f"NDSI {means['ndsi']:.2f}")
    if means["tir"] is not None:
        parts.append(f"thermal {means['tir']:.1f}")
    return ", ".join(parts)


class MaskCheck:
    """Accumulates the mean snow index and thermal value of clean-ice and debris pixels."""

    def __init__(self, bands: tuple[str, ...] | list[str]) -> None:
        self.bands = tuple(bands)
        bands = list(bands)
        self._green = bands.index("green") if "green" in bands else None
        self._swir1 = bands.index("swir1") if "swir1" in bands else None
        self._ndsi_neg = bands.index("ndsi_neg") if "ndsi_neg" in bands else None
        self._tir = bands.index("tir") if "tir" in bands else None
        self.pixels = {CLEAN: 0, DEBRIS: 0}
        self.sums = {(c, k): 0.0 for c in (CLEAN, DEBRIS) for k in ("ndsi", "tir")}
        self.counts = {(c, k): 0 for c in (CLEAN, DEBRIS) for k in ("ndsi", "tir")}

    @property
    def measures_ndsi(self) -> bool:
        return (self._green is not None and self._swir1 is not None) or self._ndsi_neg is not None

    def _ndsi(self, image: np.ndarray) -> np.ndarray | None:
        if self._green is not None and self._swir1 is not None:
            green, swir1 = image[self._green].astype(np.float64), image[self._swir1].astype(np.float64)
            total = green + swir1
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(total > 0, (green - swir1) / total, np.nan)
        if self._ndsi_neg is not None:
            return -image[self._ndsi_neg].astype(np.float64)  # HKH stores NDSI negated
        return None

    def update(self, image: np.ndarray, mask: np.ndarray) -> None:
        """Add one tile: raw (C, T, T) values (NaN at fill) and its (T, T) class indices."""
        layers = {"ndsi": self._ndsi(image), "tir": None if self._tir is None else image[self._tir]}
        for cls in (CLEAN, DEBRIS):
            chosen = mask == cls
            self.pixels[cls] += int(chosen.sum())
            for key, values in layers.items():
                if values is None:
                    continue
                picked = values[chosen]
                picked = picked[np.isfinite(picked)]
                self.sums[cls, key] += float(picked.sum(dtype=np.float64))
                self.counts[cls, key] += int(picked.size)

    def _means(self, cls: int) -> dict:
        means = {"pixels": self.pixels[cls]}
        for key in ("ndsi", "tir"):
            n = self.counts[cls, key]
            means[key] = round(self.sums[cls, key] / n, 4) if n else None
        return means

    def result(self) -> MaskCheckResult:
        """The verdict over every tile added."""
        clean, debris = self._means(CLEAN), self._means(DEBRIS)
        if not self.measures_ndsi and self._tir is None:
            note = "it needs the green and swir1 bands (or ndsi), or tir"
            return MaskCheckResult("skipped", clean, debris, note)
        if min(clean["pixels"], debris["pixels"]) < MIN_PIXELS:
            note = f"fewer than {MIN_PIXELS} pixels labelled clean ice ({clean['pixels']}) or debris ({debris['pixels']})"
            return MaskCheckResult("skipped", clean, debris, note)
        swapped = []
        if clean["ndsi"] is not None and debris["ndsi"] is not None:
            swapped.append(debris["ndsi"] > clean["ndsi"])
        if clean["tir"] is not None and debris["tir"] is not None:
            swapped.append(debris["tir"] < clean["tir"])
        status = "swapped" if all(swapped) else "ok" if not any(swapped) else "mixed"
        return MaskCheckResult(status, clean, debris)
