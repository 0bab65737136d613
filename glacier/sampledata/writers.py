"""Write the generated data in the real datasets' file layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.features import shapes
from rasterio.warp import transform_geom

from glacier.atomic import write_json
from glacier.data.raster import write_raster
from glacier.domain import (
    COMPETITION_BAND_FOLDERS,
    COMPETITION_SENSOR_BANDS,
    HKH_SENSOR_BANDS,
    index_to_encoded,
)
from glacier.sampledata.hkh import HkhScene

GEOGRAPHIC_CRS = "EPSG:4326"


def write_competition_image(
    split_dir: Path, label_dir: Path | None, name: str, bands: np.ndarray, labels: np.ndarray, profile: dict
) -> None:
    """One image: ``split_dir/Band1..Band5/NAME.tif`` and, if given, ``label_dir/NAME.tif``."""
    for folder, sensor_band, band in zip(
        COMPETITION_BAND_FOLDERS, COMPETITION_SENSOR_BANDS, bands, strict=True
    ):
        write_raster(split_dir / folder / f"{name}.tif", band, profile, descriptions=[sensor_band])
    if label_dir is not None:
        write_raster(label_dir / f"{name}.tif", index_to_encoded(labels), profile)


def write_hkh_raw_scene(raster_dir: Path, scene: HkhScene) -> None:
    """A raw scene as the dataset ships it: 15 described bands, no-data stored as 0."""
    data = np.nan_to_num(scene.channels, nan=0.0)  # the real scenes hold 0 outside the data
    profile = {"crs": scene.crs, "transform": scene.transform}
    write_raster(raster_dir / f"{scene.name}.tif", data, profile, descriptions=HKH_SENSOR_BANDS)


def label_polygons(scene: HkhScene, class_index: int) -> list[dict]:
    """GeoJSON features (in EPSG:4326) outlining one class of a scene's labels."""
    mask = scene.labels == class_index
    features = []
    for geometry, _ in shapes(mask.astype(np.uint8), mask=mask, transform=scene.transform):
        features.append(
            {
                "type": "Feature",
                "properties": {"scene": scene.name},
                "geometry": transform_geom(scene.crs, GEOGRAPHIC_CRS, geometry),
            }
        )
    return features


def write_feature_collection(path: Path, name: str, features: list[dict], crs_urn: str) -> None:
    """A GeoJSON FeatureCollection with an explicit ``crs`` member (as GDAL writes them)."""
    write_json(
        path,
        {"type": "FeatureCollection", "name": name, "crs": {"type": "name", "properties": {"name": crs_urn}},
         "features": features},
    )  # fmt: skip


def slice_feature(
    scene: HkhScene,
    scene_number: int,
    slice_number: int,
    image: np.ndarray,
    mask: np.ndarray,
    corner: tuple[int, int],
) -> dict:
    """A ``slices.geojson`` feature in the real file's style: sources, means, footprint."""
    row, col = corner
    size = mask.shape[0]
    left, top = scene.transform @ (col, row)
    right, bottom = scene.transform @ (col + size, row + size)
    ring = [[right, bottom], [right, top], [left, top], [left, bottom], [right, bottom]]
    stem = f"slice_{scene_number}_{{}}_{slice_number:03d}.npy"
    return {
        "type": "Feature",
        "properties": {
            "img_source": f"unique_tiles/{scene.name}.tif",
            "mask_source": f"masks/mask_{scene_number:02d}.npy",
            "img_slice": f"slices/{stem.format('img')}",
            "mask_slice": f"slices/{stem.format('mask')}",
            **{f"mask_mean_{k}": float(mask[..., k].mean()) for k in range(3)},
            "img_mean": float(np.nanmean(image)),
        },
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
