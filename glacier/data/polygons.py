"""Label polygons: GeoJSON or shapefile layers, reprojected and burnt onto a raster's grid.

    clean = read_polygons(Path("vector_data/clean.geojson"))      # any CRS
    labels = SceneLabels([(1, clean), (2, debris)], scene_crs, scene_bounds)
    mask = labels.rasterize(window_bounds, (height, width), window_transform)

Shapefiles are read with pyshp (pure Python); their CRS comes from the ``.prj`` beside them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio.features
import rasterio.warp
from rasterio.crs import CRS

from glacier.errors import DataError


@dataclass(frozen=True)
class Polygons:
    """Label polygons (GeoJSON-like geometry dicts) in ``crs``."""

    geometries: list[dict]
    crs: CRS
    source: Path


def _geojson_crs(data: dict, path: Path) -> CRS:
    # RFC 7946 GeoJSON is WGS 84; older files name their CRS in a "crs" member.
    member = data.get("crs")
    if member is None:
        return CRS.from_epsg(4326)
    properties = member.get("properties") if isinstance(member, dict) else None
    name = properties.get("name") if isinstance(properties, dict) else None
    if not isinstance(name, str) or not name:
        raise DataError(
            f'{path}: its "crs" member is {json.dumps(member)[:80]}, not '
            '{"type": "name", "properties": {"name": "EPSG:..."}}; fix it or remove it (WGS 84 is then assumed)'
        )
    try:
        return CRS.from_user_input(name)
    except Exception:
        raise DataError(f"{path}: unknown CRS {name!r}") from None


def _geojson_geometries(data: dict, path: Path) -> list[dict]:
    """The polygon geometries of a FeatureCollection, Feature or bare geometry; a DataError
    names the first malformed feature."""
    features = data.get("features") if data.get("type") == "FeatureCollection" else [data]
    if not isinstance(features, list):
        raise DataError(f'{path}: "features" is a {type(features).__name__}, not a list of features')
    geometries = []
    for number, feature in enumerate(features):
        if not isinstance(feature, dict):
            raise DataError(f"{path}: feature {number} is a {type(feature).__name__}, not a GeoJSON object")
        geometry = feature.get("geometry") if feature.get("type") == "Feature" else feature
        if geometry is not None and not isinstance(geometry, dict):
            raise DataError(
                f"{path}: feature {number}'s geometry is a {type(geometry).__name__}, not a GeoJSON geometry"
            )
        if geometry is None or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            continue  # a feature without geometry, or points and lines: nothing to burn
        if not _has_coordinates(geometry.get("coordinates")):
            raise DataError(f"{path}: feature {number} ({geometry['type']}) has no coordinates")
        geometries.append(geometry)
    return geometries


def _has_coordinates(coords) -> bool:
    """Whether nested lists end in [x, y] number pairs (and are not empty)."""
    if not isinstance(coords, list) or not coords:
        return False
    if isinstance(coords[0], (int, float)):
        return len(coords) >= 2 and all(isinstance(c, (int, float)) for c in coords)
    return all(_has_coordinates(part) for part in coords)


def _read_geojson(path: Path) -> Polygons:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read this GeoJSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: holds a JSON {type(data).__name__}, not a GeoJSON object (a FeatureCollection of polygons)"
        )
    return Polygons(_geojson_geometries(data, path), _geojson_crs(data, path), path)


def _read_shapefile(path: Path) -> Polygons:
    try:
        import shapefile  # pyshp: pure Python, reads .shp without GDAL/OGR
    except ImportError:
        raise DataError(
            f"{path}: reading shapefiles needs pyshp (pip install pyshp), or convert it to GeoJSON"
        ) from None
    prj = path.with_suffix(".prj")
    if not prj.is_file():
        raise DataError(f"{path}: no {prj.name} next to it, so its CRS is unknown; add the .prj file")
    crs = CRS.from_wkt(prj.read_text(encoding="utf-8", errors="replace"))
    try:
        with shapefile.Reader(str(path)) as reader:
            geometries = [shape.__geo_interface__ for shape in reader.iterShapes() if shape.points]
    except (shapefile.ShapefileException, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read this shapefile ({exc})") from None
    return Polygons(geometries, crs, path)


def read_polygons(path: Path) -> Polygons:
    """Polygons of a GeoJSON file or shapefile, with their CRS."""
    return _read_shapefile(path) if path.suffix.lower() == ".shp" else _read_geojson(path)


def _geometry_bounds(geometry: dict) -> tuple[float, float, float, float]:
    coords = np.asarray(list(_flatten_coords(geometry["coordinates"])), dtype=np.float64)
    return coords[:, 0].min(), coords[:, 1].min(), coords[:, 0].max(), coords[:, 1].max()


def _flatten_coords(coords) -> Iterator[tuple[float, float]]:
    if coords and isinstance(coords[0], (int, float)):
        yield coords[0], coords[1]
        return
    for part in coords:
        yield from _flatten_coords(part)


class SceneLabels:
    """The label polygons of one scene, reprojected to its CRS and indexed by bounding box."""

    def __init__(
        self, layers: list[tuple[int, Polygons]], crs: CRS, bounds: tuple[float, float, float, float]
    ):
        self.shapes: list[tuple[dict, int]] = []
        boxes = []
        for value, polygons in layers:  # later layers burn over earlier ones: debris wins
            west, south, east, north = rasterio.warp.transform_bounds(crs, polygons.crs, *bounds)
            for geometry in polygons.geometries:
                if geometry.get("type") not in ("Polygon", "MultiPolygon"):
                    continue
                gx0, gy0, gx1, gy1 = _geometry_bounds(geometry)
                if gx1 < west or gx0 > east or gy1 < south or gy0 > north:
                    continue  # far outside this scene: skip the reprojection
                local = rasterio.warp.transform_geom(polygons.crs, crs, geometry)
                self.shapes.append((local, value))
                boxes.append(_geometry_bounds(local))
        self.boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    def rasterize(
        self, window_bounds: tuple[float, float, float, float], shape: tuple[int, int], transform
    ) -> np.ndarray:
        """Class indices (0 background, 1 clean, 2 debris) on one window's grid."""
        west, south, east, north = window_bounds
        b = self.boxes
        near = np.flatnonzero((b[:, 2] >= west) & (b[:, 0] <= east) & (b[:, 3] >= south) & (b[:, 1] <= north))
        if near.size == 0:
            return np.zeros(shape, dtype=np.uint8)
        return rasterio.features.rasterize(
            [self.shapes[i] for i in near], out_shape=shape, transform=transform, fill=0, dtype="uint8"
        )
