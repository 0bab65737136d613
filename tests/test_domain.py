"""Class map and band names: the single source of domain knowledge."""

import numpy as np
import pytest

from glacier.domain import (
    COMPETITION_BANDS,
    HKH_BANDS,
    canonical_band,
    encoded_to_index,
    index_to_encoded,
    resolve_bands,
)
from glacier.errors import DataError


def test_label_encoding_round_trip():
    encoded = np.array([[0, 85], [170, 255]], dtype=np.uint8)
    idx = encoded_to_index(encoded)
    assert idx.tolist() == [[0, 1], [2, 3]]
    assert index_to_encoded(idx).tolist() == encoded.tolist()


def test_label_outside_encoding_names_file():
    with pytest.raises(
        DataError,
        match=r"labels/img007.tif: label 1 value\(s\) outside 0/85/170/255 in 1 pixel\(s\): 7 \(1 px\)",
    ):
        encoded_to_index(np.array([0, 7, 85], dtype=np.uint8), source="labels/img007.tif")


def test_landsat7_and_8_band_numbers_match_by_canonical_name():
    # Landsat 7 B5 and Landsat 8 B6 are both SWIR-1; their B2s differ (green vs blue).
    assert canonical_band("B5", sensor="L7") == canonical_band("B6", sensor="L8") == "swir1"
    assert canonical_band("B2", sensor="L7") == "green"
    assert canonical_band("B2", sensor="L8") == "blue"
    assert canonical_band("B6_VCID_1") == "tir"
    assert resolve_bands("B1,B2,B3,B5,B6_VCID_1", sensor="L7") == COMPETITION_BANDS
    assert all(b in HKH_BANDS for b in COMPETITION_BANDS)
    with pytest.raises(DataError, match="unknown band"):
        canonical_band("B99")


def test_tile_ids_pair_phase1_and_phase2_names():
    from glacier.domain import tile_id_from_name

    assert tile_id_from_name("img001.tif") == "001"
    assert tile_id_from_name("B2_B2_masked_02_07.tif") == "02_07"
    assert tile_id_from_name("Y_output_resized_02_07.tif") == "02_07"
    assert tile_id_from_name("scene.tif") == "scene"
