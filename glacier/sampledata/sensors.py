"""Value scales of the two datasets: Landsat 8/9 Collection-2 style and Landsat 7 DN.

The competition's value scale is unknown; we use Collection-2 scaled reflectance
((reflectance + 0.2) / 2.75e-5, so 0..1 -> ~7300..43600) and brightness temperature in
kelvin. HKH stores Landsat 7 digital numbers 0..255 (snow saturates at 255), thermal in its
own DN range, indices, SRTM elevation (m) and slope (degrees). The scales differ on
purpose: statistics are computed per dataset.
"""

from __future__ import annotations

import numpy as np

from glacier.domain import COMPETITION_BANDS, HKH_BANDS
from glacier.sampledata.spectra import OPTICAL_BANDS, Observation
from glacier.sampledata.terrain import Terrain

_C2_SCALE, _C2_OFFSET = 2.75e-5, -0.2

# Landsat 7 DN = offset + gain * reflectance, per OPTICAL_BANDS band (haze lifts blue most).
_L7_OFFSET = {"blue": 38.0, "green": 24.0, "red": 17.0, "nir": 12.0, "swir1": 6.0, "swir2": 4.0}
_L7_GAIN = {"blue": 300.0, "green": 285.0, "red": 290.0, "nir": 235.0, "swir1": 250.0, "swir2": 250.0}

# Landsat 7 Collection-1 BQA codes seen in the real HKH scenes.
BQA_CLEAR, BQA_SNOW_ICE, BQA_CLOUD, BQA_CLOUD_SHADOW = 672.0, 1696.0, 752.0, 928.0


def competition_bands(obs: Observation) -> np.ndarray:
    """(5, H, W) float32 in the competition's band order: scaled reflectance and kelvin."""
    bands = []
    for name in COMPETITION_BANDS:
        if name == "tir":
            bands.append(obs.temperature)
        else:
            rho = obs.reflectance[OPTICAL_BANDS.index(name)]
            bands.append(np.round((np.clip(rho, -0.2, 1.6) - _C2_OFFSET) / _C2_SCALE))
    return np.stack(bands).astype(np.float32)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = a + b
    return np.where(total != 0, (a - b) / np.where(total != 0, total, 1.0), 0.0)


def hkh_channels(obs: Observation, terrain: Terrain, cloud: np.ndarray) -> np.ndarray:
    """(15, H, W) float32 in HKH channel order (domain.HKH_BANDS), Landsat 7 value scales."""
    dn = {}
    for i, name in enumerate(OPTICAL_BANDS):
        dn[name] = np.clip(np.round(_L7_OFFSET[name] + _L7_GAIN[name] * obs.reflectance[i]), 0, 255)
    dn["pan"] = np.clip(np.round((dn["green"] + dn["red"] + dn["nir"]) / 3 * 1.05), 0, 255)
    kelvin = obs.temperature
    dn["tir"] = np.clip(np.round((kelvin - 215.0) * 1.3), 0, 255)  # low gain: wide range
    dn["tir_high"] = np.clip(np.round((kelvin - 240.0) * 2.0), 0, 255)  # high gain: saturates
    ndsi_neg = _ratio(dn["swir1"], dn["green"])  # HKH stores NDSI negated: (B5 - B2) / (B5 + B2)
    bqa = np.full(kelvin.shape, BQA_CLEAR)
    bqa[(ndsi_neg < -0.4) & (dn["green"] > 80)] = BQA_SNOW_ICE  # the BQA flag is spectral too
    bqa[cloud > 0.5] = BQA_CLOUD
    dn.update(
        bqa=bqa,
        ndvi=_ratio(dn["nir"], dn["red"]),
        ndsi_neg=ndsi_neg,
        ndwi=_ratio(dn["nir"], dn["swir1"]),
        elevation=np.round(terrain.elevation),
        slope=terrain.slope,
    )
    return np.stack([dn[name] for name in HKH_BANDS]).astype(np.float32)
