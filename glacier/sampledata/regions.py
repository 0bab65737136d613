"""Per-region distributions of scene parameters.

Each synthetic image draws its own parameters from its region's ranges. The competition
test region differs from the training region (brighter, other sun angles, a bit warmer)
the way the real unseen Himalayan test region does; HKH has less ice and rare debris.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Region:
    """Uniform ranges ``(low, high)`` from which every scene draws its parameters."""

    name: str
    glacier_share: tuple[float, float]  # clean + debris-covered ice, share of the image
    tongue_count: tuple[int, int]  # valley tongues per scene, at most (fewer if fewer ice basins)
    tongue_length_m: tuple[float, float]  # the longest tongue, ELA to snout
    tongue_half_width_m: tuple[float, float]  # a big tongue's half-width at the ELA (smaller ones a bit less)
    debris_probability: float  # chance that a long enough tongue carries debris
    debris_length: tuple[float, float]  # debris-covered share of such a tongue (ELA to snout)
    lake_probability: float  # chance that a scene has a proglacial lake at a snout
    snow_share: tuple[float, float]  # seasonal snow outside glaciers (labelled background)
    cloud_probability: float
    cloud_share: tuple[float, float]
    vegetation_share: tuple[float, float]
    sun_elevation: tuple[float, float]  # degrees
    sun_azimuth: tuple[float, float]  # degrees clockwise from north
    base_elevation: tuple[float, float]  # m, the valley floors
    median_slope: tuple[float, float]  # degrees; sets the relief
    air_temperature: tuple[float, float]  # K at 4000 m
    gain: tuple[float, float]  # per-image brightness factor (illumination, atmosphere)


COMPETITION_TRAIN = Region(
    name="competition-train",
    glacier_share=(0.12, 0.50),
    tongue_count=(7, 12),
    tongue_length_m=(9000.0, 14000.0),
    tongue_half_width_m=(380.0, 520.0),
    debris_probability=0.9,
    debris_length=(0.5, 0.8),
    lake_probability=0.3,
    snow_share=(0.0, 0.12),
    cloud_probability=0.35,
    cloud_share=(0.03, 0.25),
    vegetation_share=(0.0, 0.2),
    sun_elevation=(28.0, 55.0),
    sun_azimuth=(120.0, 160.0),
    base_elevation=(2800.0, 4200.0),
    median_slope=(24.0, 34.0),
    air_temperature=(276.0, 288.0),
    gain=(0.90, 1.08),
)

# The unseen test region: the same kind of terrain, seen brighter, under other sun angles,
# a little warmer and higher, with more seasonal snow (only the differences are listed).
COMPETITION_TEST = replace(
    COMPETITION_TRAIN,
    name="competition-test",
    glacier_share=(0.12, 0.45),
    debris_length=(0.5, 0.85),
    snow_share=(0.02, 0.15),
    cloud_probability=0.3,
    cloud_share=(0.03, 0.2),
    vegetation_share=(0.0, 0.25),
    sun_elevation=(35.0, 60.0),
    sun_azimuth=(110.0, 150.0),
    base_elevation=(3000.0, 4400.0),
    air_temperature=(279.0, 291.0),
    gain=(0.98, 1.15),
)

HKH = Region(
    name="hkh",
    glacier_share=(0.02, 0.25),
    tongue_count=(1, 4),
    tongue_length_m=(2500.0, 6000.0),
    tongue_half_width_m=(180.0, 350.0),
    debris_probability=0.45,
    debris_length=(0.3, 0.6),
    lake_probability=0.3,  # lakes exist on the ground, but HKH labels have no lake class
    snow_share=(0.0, 0.10),
    cloud_probability=0.3,
    cloud_share=(0.02, 0.15),
    vegetation_share=(0.05, 0.3),
    sun_elevation=(30.0, 50.0),
    sun_azimuth=(130.0, 160.0),
    base_elevation=(2500.0, 3800.0),
    median_slope=(24.0, 34.0),
    air_temperature=(274.0, 286.0),
    gain=(0.92, 1.08),
)
