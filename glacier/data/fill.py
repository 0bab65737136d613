"""Fill (no data): the one rule for which pixels hold no measurement, and what follows from it.

A pixel is **fill** when every band of it is 0, or any band is NaN, or any band equals its
file's nodata tag (the readers turn tagged nodata into NaN as they read). Landsat scenes
and clips store no-data as 0 in every band, often without a nodata tag: the real HKH clip in
the test fixtures is 36% zero fill. No real surface is exactly 0 in every band at once
(thermal alone never is), so the rule does not catch data.

What follows, everywhere the rule is used:

- readers mark fill as NaN in every band (``mark_fill``), so one NaN test finds it later;
- band statistics and ``--min-valid`` skip it (they skip NaN);
- its label is the ignore index: the loss never sees it, whatever the label file says;
- after normalisation its inputs are 0 (``glacier.normalization.normalize``);
- prediction calls it background (``background_at_fill``), after the model's decision.

The rule reads the bands it is given: a model that takes one band calls a 0 of that band
fill. The exported ``solution.py`` repeats the rule in two lines (it cannot import glacier).
"""

from __future__ import annotations

import numpy as np

from glacier.errors import DataError

BACKGROUND = 0
"""Class index predicted at fill (``glacier.domain.CLASS_NAMES[0]``)."""


def find_fill(image: np.ndarray) -> np.ndarray:
    """Bool (H, W): where a (C, H, W) image is fill (all bands 0, or any band NaN)."""
    values = np.asarray(image)
    if values.dtype.kind != "f":
        return (values == 0).all(axis=0)
    return np.isnan(values).any(axis=0) | (values == 0).all(axis=0)


def mark_fill(image: np.ndarray) -> np.ndarray:
    """Set every band of every fill pixel of a float (C, H, W) ``image`` to NaN, in place; returns it."""
    fill = find_fill(image)
    if fill.any():
        image[:, fill] = np.nan
    return image


def fill_fraction(image: np.ndarray) -> float:
    """Share of a (C, H, W) image's pixels that are fill."""
    fill = find_fill(image)
    return float(fill.mean()) if fill.size else 0.0


def background_at_fill(indices: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Predicted class indices (H, W) with fill pixels of the raw ``image`` set to background, in place."""
    indices[find_fill(image)] = BACKGROUND
    return indices


def refuse_infinite(values: np.ndarray, source: str) -> None:
    """A DataError naming ``source`` and the count when ``values`` hold +-inf.

    Infinity is not fill: it is a broken value that would turn a band's mean and std into
    NaN, and the model would never see that band.
    """
    if values.dtype.kind != "f":
        return
    count = int(np.isinf(values).sum())
    if count:
        raise DataError(
            f"{source}: {count} value(s) are infinite; replace them with NaN or the file's nodata value "
            "(glacier treats those as fill) and run again"
        )
