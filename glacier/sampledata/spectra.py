"""What a sensor sees of a scene: reflectance per band, illumination, clouds, thermal, noise.

Produces physical quantities (top-of-atmosphere-like reflectance 0..1 and brightness
temperature in kelvin); the competition and HKH modules turn them into their own value
scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glacier.sampledata.noise import blur, smooth_noise
from glacier.sampledata.scene import Material, Scene

OPTICAL_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1", "swir2")
"""Canonical names of the reflective bands simulated, in this order."""

# Reflectance of each material in OPTICAL_BANDS order (blue, green, red, nir, swir1, swir2).
_ROCK_BRIGHT = np.array([0.19, 0.23, 0.27, 0.32, 0.38, 0.32])
_ROCK_DARK = np.array([0.07, 0.09, 0.11, 0.15, 0.20, 0.17])
_SOIL = np.array([0.10, 0.14, 0.19, 0.26, 0.33, 0.28])
_VEGETATION = np.array([0.04, 0.08, 0.05, 0.38, 0.19, 0.09])
_SNOW = np.array([0.93, 0.91, 0.88, 0.80, 0.11, 0.07])  # fresh seasonal snow: slightly whiter
_FIRN = np.array([0.84, 0.82, 0.79, 0.68, 0.07, 0.04])
_ICE = np.array([0.64, 0.60, 0.53, 0.36, 0.04, 0.03])  # bare ice is bluish
_DIRTY_ICE = np.array([0.36, 0.35, 0.34, 0.30, 0.08, 0.06])
_CLEAR_LAKE = np.array([0.07, 0.09, 0.05, 0.02, 0.008, 0.005])
_TURBID_LAKE = np.array([0.13, 0.17, 0.13, 0.05, 0.015, 0.008])
_CLOUD = np.array([0.78, 0.77, 0.76, 0.74, 0.56, 0.42])  # bright in SWIR too, unlike snow

_PATH_RADIANCE = np.array([0.06, 0.04, 0.025, 0.012, 0.004, 0.002])
"""Atmospheric haze added everywhere, strongest in blue: shadows look blue-grey."""
_DIFFUSE = 0.18
"""Share of irradiance that is diffuse skylight (what still reaches cast shadows)."""


@dataclass
class Observation:
    """A scene as the sensor records it: (6, H, W) reflectance and (H, W) temperature."""

    reflectance: np.ndarray  # float32, OPTICAL_BANDS order
    temperature: np.ndarray  # float32, brightness temperature (K)


def surface_reflectance(rng: np.random.Generator, scene: Scene) -> np.ndarray:
    """Per-pixel surface reflectance (6, H, W) from materials plus their natural variability."""
    shape = scene.material.shape
    m = scene.material
    lith = scene.lithology[None]
    rock = _ROCK_DARK[:, None, None] + lith * (_ROCK_BRIGHT - _ROCK_DARK)[:, None, None]
    rho = rock.copy()
    texture = 1.0 + 0.08 * smooth_noise(rng, shape, 0.8) + 0.05 * smooth_noise(rng, shape, 3 * scene.scale)

    def put(material: Material, spectrum: np.ndarray) -> None:
        where = m == material
        rho[:, where] = spectrum[:, where] if spectrum.ndim == 3 else spectrum[:, None]

    veg_mix = np.clip(0.6 + 0.3 * smooth_noise(rng, shape, 2 * scene.scale), 0.2, 1.0)[None]
    put(Material.SOIL, _SOIL[:, None, None] * (0.8 + 0.4 * lith))
    put(Material.VEGETATION, veg_mix * _VEGETATION[:, None, None] + (1 - veg_mix) * _SOIL[:, None, None])
    # Seasonal snow is often thin: partly mixed with the rock below it.
    snow_cover = np.clip(0.85 + 0.2 * smooth_noise(rng, shape, 2 * scene.scale), 0.45, 1.0)[None]
    put(Material.SNOW, snow_cover * _SNOW[:, None, None] + (1 - snow_cover) * rock)
    put(Material.FIRN, _FIRN[:, None, None] * (1 + 0.03 * smooth_noise(rng, shape, 4 * scene.scale)))
    dirt = scene.dirt[None]
    put(Material.ICE, (1 - dirt) * _ICE[:, None, None] + dirt * _DIRTY_ICE[:, None, None])
    # Debris is local rock: same minerals, a bit darker and more uniform than bedrock.
    # Hummocky rubble (debris and moraines alike) is rougher than bedrock at the pixel scale.
    hummocks = 0.9 * rock * (1.0 + 0.1 * smooth_noise(rng, shape, 0.6))[None]
    put(Material.DEBRIS, hummocks)
    put(Material.MORAINE, hummocks)
    # Only debris on ice has supraglacial ponds (dark specks) and ice cliffs (bright specks).
    specks = smooth_noise(rng, shape, 0.7 * scene.scale + 0.3)
    pond = (m == Material.DEBRIS) & (specks > 2.3)
    cliff = (m == Material.DEBRIS) & (specks < -2.3)
    rho[:, pond] = 0.5 * rho[:, pond] + 0.5 * _TURBID_LAKE[:, None]
    rho[:, cliff] = 0.4 * rho[:, cliff] + 0.6 * _DIRTY_ICE[:, None]
    turbidity = rng.uniform(0, 1)
    put(Material.WATER, (1 - turbidity) * _CLEAR_LAKE + turbidity * _TURBID_LAKE)
    return rho * texture[None]


def surface_temperature(rng: np.random.Generator, scene: Scene) -> np.ndarray:
    """Surface temperature (K): a lapse rate with height, sun-heated rock, ice at or below 0 C.

    Debris-covered ice is colder than rock in the same sun and at the same height, most of
    all where the debris is thin and where the rock around it is warm (low down); but high
    rock is as cold, so the thermal band alone does not separate debris from rock.
    """
    terrain, m = scene.terrain, scene.material
    air = scene.air_temperature - 6.5e-3 * (terrain.elevation - 4000.0)
    heating = rng.uniform(5.0, 11.0)
    rock = air + heating * terrain.direct * (1 - scene.cloud_shadow)
    temp = rock.copy()
    cold_surface = np.minimum(air - 2.0, 272.5)
    temp[m == Material.VEGETATION] = (air + 0.5 * heating * terrain.direct - 1.0)[m == Material.VEGETATION]
    for material in (Material.SNOW, Material.FIRN, Material.ICE):
        temp[m == material] = cold_surface[m == material]
    # Debris over ice conducts heat down to the melting ice: its surface lies between 0 C and
    # the temperature bare rock would reach, nearer 0 C where it is thin.
    debris = m == Material.DEBRIS
    warming = rng.uniform(0.2, 0.4) + 0.3 * scene.debris_thickness[debris]
    temp[debris] = 273.15 + (np.maximum(rock[debris], 273.15) - 273.15) * warming - rng.uniform(0.0, 2.0)
    moraine = m == Material.MORAINE
    temp[moraine] = rock[moraine] - rng.uniform(0.0, 2.0)  # some moraines are ice-cored
    water = m == Material.WATER
    temp[water] = np.maximum(air[water] + 1.0, 275.5)
    return temp + 0.8 * smooth_noise(rng, temp.shape, 3 * scene.scale)


def observe(rng: np.random.Generator, scene: Scene) -> Observation:
    """Illuminate, cloud and blur the scene, add haze, per-image gain and sensor noise."""
    terrain = scene.terrain
    rho = surface_reflectance(rng, scene)
    sky_view = np.cos(np.radians(terrain.slope) / 2) ** 2
    direct = terrain.direct * (1.0 - scene.cloud_shadow)
    illumination = (1 - _DIFFUSE) * direct + _DIFFUSE * sky_view
    path = _PATH_RADIANCE * rng.uniform(0.6, 1.5)
    radiance = rho * illumination[None] + path[:, None, None]
    cloud = scene.cloud[None]
    cloud_rho = _CLOUD[:, None, None] * (0.85 + 0.15 * smooth_noise(rng, scene.cloud.shape, 3 * scene.scale))
    radiance = (1 - cloud) * radiance + cloud * cloud_rho
    band_gain = scene.gain * rng.normal(1.0, 0.03, size=6)
    noise = rng.standard_normal(radiance.shape) * (0.004 + 0.012 * radiance)
    reflectance = radiance * band_gain[:, None, None] + noise

    surface = surface_temperature(rng, scene)
    cloud_top = scene.air_temperature - rng.uniform(25.0, 45.0)
    temperature = (1 - scene.cloud) * surface + scene.cloud * cloud_top
    # The thermal band is coarser (100 m for Landsat 8 TIRS, resampled to 30 m).
    temperature = blur(temperature, 1.4 * scene.scale) + rng.standard_normal(surface.shape) * 0.35
    return Observation(reflectance.astype(np.float32), temperature.astype(np.float32))
