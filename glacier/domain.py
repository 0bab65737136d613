"""The one place for domain knowledge: classes, their encodings and the spectral bands.

Bands are identified by *canonical* names (``blue``, ``swir1``, ``tir``...) so that a
Landsat 7 channel and its Landsat 8/9 counterpart share a name: HKH's ``B5`` and the
competition's ``B6`` are both ``swir1``. Matching bands between datasets (pretraining on
HKH, fine-tuning on the competition data) is then a match on canonical names.
"""

from __future__ import annotations

import re

import numpy as np

from glacier.errors import DataError

# ---------------------------------------------------------------------------- classes
CLASS_NAMES: tuple[str, ...] = ("background", "glacier", "debris", "lake")
"""Class index -> name. Index order is the training target order."""

CLASS_VALUES: tuple[int, ...] = (0, 85, 170, 255)
"""Class index -> pixel value in the competition's label and submission encoding."""

NUM_CLASSES = len(CLASS_NAMES)
IGNORE_INDEX = 255
"""Target value for pixels without a label (no data, NaN, padding)."""

_VALUE_TO_INDEX = np.full(256, IGNORE_INDEX, dtype=np.uint8)
for _index, _value in enumerate(CLASS_VALUES):
    _VALUE_TO_INDEX[_value] = _index


def stray_label_values(mask: np.ndarray) -> list[tuple[float, int]]:
    """(value, pixel count) of every value of ``mask`` outside the encoding, most common first."""
    values, counts = np.unique(np.asarray(mask), return_counts=True)
    stray = [(v.item(), int(n)) for v, n in zip(values, counts, strict=True) if v not in CLASS_VALUES]
    return sorted(stray, key=lambda pair: -pair[1])


def describe_stray_labels(stray: list[tuple[float, int]], limit: int = 6) -> str:
    """``"3 values outside 0/85/170/255 in 52 pixels: 84 (40 px), 86 (12 px)"``, for messages."""
    shown = ", ".join(f"{value:g} ({count} px)" for value, count in stray[:limit])
    more = f", and {len(stray) - limit} more" if len(stray) > limit else ""
    pixels = sum(count for _, count in stray)
    encoding = "/".join(str(v) for v in CLASS_VALUES)
    return f"{len(stray)} value(s) outside {encoding} in {pixels} pixel(s): {shown}{more}"


def encoded_to_index(mask: np.ndarray, source: str = "mask") -> np.ndarray:
    """Map a competition-encoded mask (0/85/170/255) to class indices 0..3.

    Raises a DataError naming ``source``, the stray values and their pixel counts if any
    value is outside the encoding (``snap_to_class_values`` maps them instead).
    """
    values = np.asarray(mask)
    stray = stray_label_values(values)
    if stray:
        raise DataError(
            f"{source}: label {describe_stray_labels(stray)} (0 background, 85 glacier, 170 debris, 255 lake)"
        )
    return _VALUE_TO_INDEX[values.astype(np.uint8)]


def snap_to_class_values(mask: np.ndarray, source: str = "mask") -> tuple[np.ndarray, int]:
    """Each label value moved to the nearest class value (0/85/170/255); returns the
    uint8 mask and how many pixels moved.

    Labels resized with interpolation hold values between the classes (phase 1's
    ``Y_output_resized_*``); the nearest class value is what the resampling blurred.
    """
    values = np.asarray(mask, dtype=np.float64)
    if not np.isfinite(values).all():
        raise DataError(f"{source}: label values must be finite to snap them (found NaN or inf)")
    classes = np.asarray(CLASS_VALUES, dtype=np.float64)
    nearest = np.abs(values[..., None] - classes).argmin(axis=-1)
    snapped = classes.astype(np.uint8)[nearest]
    return snapped, int((snapped != values).sum())


def index_to_encoded(indices: np.ndarray) -> np.ndarray:
    """Map class indices 0..3 to the competition encoding (uint8 0/85/170/255)."""
    lut = np.zeros(256, dtype=np.uint8)
    lut[:NUM_CLASSES] = CLASS_VALUES
    return lut[np.asarray(indices, dtype=np.uint8)]


# ------------------------------------------------------------------------------ bands
CANONICAL_BANDS: dict[str, str] = {
    "blue": "visible blue reflectance",
    "green": "visible green reflectance",
    "red": "visible red reflectance",
    "nir": "near infrared reflectance",
    "swir1": "short-wave infrared 1 (~1.6 um)",
    "swir2": "short-wave infrared 2 (~2.2 um)",
    "tir": "thermal infrared (Landsat 8/9 B10; Landsat 7 B6 low gain)",
    "tir_high": "thermal infrared, Landsat 7 B6 high gain",
    "pan": "panchromatic",
    "bqa": "quality bits (not a reflectance)",
    "ndvi": "normalised difference vegetation index",
    "ndsi_neg": "negated NDSI, (SWIR1 - green) / (SWIR1 + green)",
    "ndwi": "normalised difference water index, (NIR - SWIR1) / (NIR + SWIR1)",
    "elevation": "SRTM elevation (m)",
    "slope": "terrain slope",
}
REFLECTANCE_BANDS: frozenset[str] = frozenset({"blue", "green", "red", "nir", "swir1", "swir2", "pan"})
"""Bands that measure reflected sunlight, where a brightness gain in raw units is physical."""

COMPETITION_BAND_FOLDERS: tuple[str, ...] = ("Band1", "Band2", "Band3", "Band4", "Band5")
COMPETITION_SENSOR_BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B6", "B10")
"""Landsat 8/9 band of each competition band folder, in folder order."""
COMPETITION_BANDS: tuple[str, ...] = ("blue", "green", "red", "swir1", "tir")
"""Canonical band of each competition band folder, in folder order."""
COMPETITION_LABEL_FOLDERS: tuple[str, ...] = ("labels", "label")
"""Label folder names: phase 2 uses ``labels``, phase 1 used ``label``."""

HKH_SENSOR_BANDS: tuple[str, ...] = (
    "B1", "B2", "B3", "B4", "B5", "B6_VCID_1", "B6_VCID_2", "B7", "B8", "BQA",
    "ndvi", "ndsi", "ndwi", "elevation", "slope",
)  # fmt: skip
"""The 15 HKH channels in file order (band descriptions of the raw scenes)."""
HKH_BANDS: tuple[str, ...] = (
    "blue", "green", "red", "nir", "swir1", "tir", "tir_high", "swir2", "pan", "bqa",
    "ndvi", "ndsi_neg", "ndwi", "elevation", "slope",
)  # fmt: skip
"""Canonical name of each HKH channel, in file order."""
HKH_DEFAULT_BANDS: tuple[str, ...] = COMPETITION_BANDS
"""HKH channels used by default: the five matched to the competition bands."""
HKH_SEVEN_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1", "tir", "swir2")

_ALIASES: dict[str, str] = {name.lower(): name for name in CANONICAL_BANDS}
_ALIASES.update({f"l7:{s}".lower(): c for s, c in zip(HKH_SENSOR_BANDS, HKH_BANDS, strict=True)})
_ALIASES.update(
    {f"l8:{s}".lower(): c for s, c in zip(COMPETITION_SENSOR_BANDS, COMPETITION_BANDS, strict=True)}
)
_ALIASES.update({"ndsi": "ndsi_neg", "b6_vcid_1": "tir", "b6_vcid_2": "tir_high", "thermal": "tir"})


def canonical_band(name: str, sensor: str | None = None) -> str:
    """Resolve a band name to its canonical name.

    ``name`` may be canonical (``swir1``), sensor-qualified (``L7:B5``, ``L8:B6``), or a
    bare sensor band (``B5``) when ``sensor`` ("L7" for HKH, "L8" for the competition) says
    which numbering it uses: Landsat 7's B2 is green, Landsat 8's B2 is blue.
    """
    key = name.strip().lower()
    if sensor and not key.startswith(("l7:", "l8:")) and f"{sensor.lower()}:{key}" in _ALIASES:
        key = f"{sensor.lower()}:{key}"
    if key in _ALIASES:
        return _ALIASES[key]
    raise DataError(
        f"unknown band {name!r}: use a canonical name ({', '.join(CANONICAL_BANDS)}) "
        "or a sensor band such as L7:B5 or L8:B6"
    )


def resolve_bands(names: list[str] | tuple[str, ...] | str, sensor: str | None = None) -> tuple[str, ...]:
    """Resolve a list (or comma-separated string) of band names to canonical names."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    if not names:
        raise DataError("the band list names no band; give band names separated by commas, e.g. blue,swir1")
    resolved = tuple(canonical_band(n, sensor) for n in names)
    if len(set(resolved)) != len(resolved):
        raise DataError(f"band list {list(names)} names a band twice")
    return resolved


# --------------------------------------------------------------------------- tile ids
_DIGITS = re.compile(r"\d+(?:_\d+)*")


def tile_id_from_name(name: str) -> str:
    """The tile id of a file name: its last run of digit groups.

    ``img001.tif`` -> ``"001"`` (the id the submission returns); phase-1 names such as
    ``B2_B2_masked_02_07.tif`` and ``Y_output_resized_02_07.tif`` -> ``"02_07"``, so files
    pair across band and label folders whatever their prefixes. A name without digits is
    its own id (its stem).
    """
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    runs = _DIGITS.findall(stem)
    return runs[-1] if runs else stem
