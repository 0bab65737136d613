"""Prepared format 2 (float16 standardised) is written; format 1 (float32 raw) is still read."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_factory import make_competition

from glacier.data import prepared_format as fmt
from glacier.data.prepare import PrepareOptions, prepare_competition
from glacier.data.prepared import PreparedDataset, TileDataset
from glacier.normalization import BandStats


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    train = make_competition(root / "src", n_images=4, size=(40, 40))
    out = {}
    for version in (1, 2):
        options = PrepareOptions(tile_size=32, num_folds=2, format_version=version)
        prepare_competition(train, root / f"v{version}", options, progress=False)
        out[version] = PreparedDataset.open(root / f"v{version}")
    return out


def test_format_1_is_float32_raw_and_format_2_float16_standardised(both):
    v1, v2 = both[1], both[2]
    assert (v1.format_version, v1.standardized, v1.images.dtype) == (1, False, np.float32)
    assert (v2.format_version, v2.standardized, v2.images.dtype) == (2, True, np.float16)
    assert set(v1.manifest) == set(fmt.MANIFEST_KEYS_V1) and list(v2.manifest) == list(fmt.MANIFEST_KEYS)
    assert v1.stats == v2.stats and len(v1) == len(v2)
    np.testing.assert_array_equal(np.asarray(v1.masks), np.asarray(v2.masks))
    raw1, raw2 = v1.raw_tile(5), v2.raw_tile(5)
    np.testing.assert_array_equal(np.isnan(raw1), np.isnan(raw2))
    np.testing.assert_allclose(raw2, raw1, rtol=1e-3, equal_nan=True)
    assert (v2.path / fmt.IMAGES).stat().st_size < 0.55 * (v1.path / fmt.IMAGES).stat().st_size


def test_training_samples_agree_to_float16_precision(both):
    for stats in (None, BandStats(both[1].bands, (90.0,) * 5, (40.0,) * 5)):  # own statistics, and others
        for k in (0, 3, 7):
            a = TileDataset(both[1], [k], stats=stats)[0]
            b = TileDataset(both[2], [k], stats=stats)[0]
            np.testing.assert_array_equal(a["mask"].numpy(), b["mask"].numpy())
            np.testing.assert_allclose(b["image"].numpy(), a["image"].numpy(), atol=5e-3)


def test_a_damaged_dtype_is_refused(both, tmp_path):
    import shutil

    copy = tmp_path / "v2"
    shutil.copytree(both[2].path, copy)
    np.save(
        copy / fmt.IMAGES, np.asarray(both[2].images, dtype=np.float32)
    )  # float32 under a format-2 manifest
    from glacier.errors import DataError

    with pytest.raises(DataError, match=r"images.npy: float32 .* does not match the manifest \(float16"):
        PreparedDataset.open(copy)
    assert json.loads((copy / fmt.MANIFEST).read_text())["format_version"] == 2
