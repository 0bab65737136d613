"""Tiny prepared datasets for the training tests, written by the real preprocess path
(GeoTIFFs / HKH slices -> ``glacier.data.prepare``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from data_factory import make_competition, make_hkh_slices  # noqa: E402

# Few steps per epoch: 16 crops of 64 px in batches of 4.
FAST = ["--set", "training.sampler.samples_per_epoch=16", "--set", "training.batch_size=4"]


def tiny_run(command: str, data, out, *extra) -> list:
    """The arguments of a training ``command`` with the tiny preset on ``data`` into ``out``."""
    return [command, "--config", "tiny", "--data", data, "--out", out, *extra]


def prepared_competition(root: Path, n_images: int = 9, folds: int = 3) -> Path:
    from glacier.data.prepare import PrepareOptions, prepare_competition

    train = make_competition(root / "raw_competition", n_images=n_images, size=(64, 64))
    out = root / "prep_competition"
    prepare_competition(train, out, PrepareOptions(tile_size=64, num_folds=folds), progress=False)
    return out


def prepared_hkh(root: Path, bands: tuple[str, ...] = ("blue", "green", "red")) -> Path:
    from glacier.data.prepare import PrepareOptions, prepare_hkh

    slices = make_hkh_slices(root / "raw_hkh" / "slices", scenes=3, per_scene=2, size=64)
    out = root / "prep_hkh"
    prepare_hkh(slices, out, bands=bands, options=PrepareOptions(tile_size=64, num_folds=3), progress=False)
    return out
