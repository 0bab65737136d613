"""Realistic synthetic sample data in the real competition and HKH layouts.

``generate_sample_data(out, images=25, size=128, seed=0, ...)`` writes the whole tree; the
modules build it up: terrain (elevation, sun and shadows) -> glaciers (mass balance and
flux routing) -> scene (class layout: ice, debris, lakes, snow, moraines, clouds) ->
spectra (what the sensor sees) -> sensors (each dataset's value scales) -> labels
(hand-drawn outline noise) -> writers (GeoTIFF, npy, GeoJSON).
"""

from glacier.sampledata.generate import DatasetSummary, SampleDataSummary, generate_sample_data

__all__ = ["DatasetSummary", "SampleDataSummary", "generate_sample_data"]
