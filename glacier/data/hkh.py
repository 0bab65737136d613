"""The HKH Glacier Mapping dataset (Landsat 7): LILA slices or raw scenes with label polygons.

Two layouts are read:

- slices: ``slice_{S}_img_{N}.npy`` float32 (H, W, 15) channel-last with
  ``slice_{S}_mask_{N}.npy`` uint8 (H, W, 3) masks (ch1 clean ice, ch2 debris); in the
  archive's ``splits/{train,dev,test}/`` folders the masks are one-hot (clean, debris, background);
- raw scenes: ``raster_data/*.tif`` (15 bands named by their descriptions) with
  ``vector_data/clean.*`` and ``debris.*`` polygons (GeoJSON, or shapefiles through pyshp),
  in any CRS; the polygons are reprojected and rasterised on each scene's grid, tile by tile.

Channels are always chosen by band name (``glacier.domain.canonical_band(..., sensor="L7")``),
never by position. HKH has no lake class; pixels that are NaN in any chosen band are ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
import rasterio.warp
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from glacier.data.tiling import pad_image, pad_mask
from glacier.domain import HKH_BANDS, IGNORE_INDEX, canonical_band
from glacier.errors import DataError

_SLICE_IMG = re.compile(r"^slice_(\d+)_img_(\d+)\.npy$")
CLEAN, DEBRIS = 1, 2  # class indices burnt from the two label layers (glacier.domain.CLASS_NAMES)
_VECTOR_SUFFIXES = (".geojson", ".json", ".shp")


# ------------------------------------------------------------------------------ layout
@dataclass(frozen=True)
class HkhLayout:
    """What a source folder holds: ``kind`` is "slices" or "scenes"."""

    kind: str
    folder: Path
    one_hot_masks: bool = False
    """Slices masks in the splits/ one-hot order (clean, debris, background)."""


def _has_slices(folder: Path) -> bool:
    return folder.is_dir() and any(_SLICE_IMG.match(p.name) for p in folder.iterdir())


def detect_layout(src: str | Path) -> HkhLayout:
    """Recognise ``glacier_data/``, its ``slices/`` (or a ``splits/<name>/``) folder, or raw scenes."""
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src}: folder not found (expected HKH glacier_data/, its slices/, or raw scenes)")
    for folder in (src / "slices", src):
        if _has_slices(folder):
            one_hot = "splits" in folder.resolve().parts
            return HkhLayout("slices", folder, one_hot)
    if (src / "raster_data").is_dir() and (src / "vector_data").is_dir():
        return HkhLayout("scenes", src)
    raise DataError(
        f"{src}: not an HKH dataset folder; expected slices/slice_S_img_N.npy + slice_S_mask_N.npy, "
        "or raw scenes as raster_data/*.tif with vector_data/clean.* and vector_data/debris.* "
        "(GeoJSON or shapefile)"
    )


def band_indices(wanted: tuple[str, ...], available: tuple[str, ...], source: str) -> list[int]:
    """0-based positions of ``wanted`` canonical bands among ``available`` ones."""
    missing = [b for b in wanted if b not in available]
    if missing:
        raise DataError(f"{source}: bands {missing} not found; it has {list(available)}")
    return [available.index(b) for b in wanted]


# ------------------------------------------------------------------------------ slices
@dataclass(frozen=True)
class SlicePair:
    image_path: Path
    mask_path: Path
    scene: str
    """The slice's source scene number S: slices of one scene share a cross-validation fold."""
    slice_id: str


def find_slices(folder: Path) -> list[SlicePair]:
    """Image/mask pairs in a slices folder, sorted by scene and slice number."""
    pairs = []
    for path in folder.iterdir():
        match = _SLICE_IMG.match(path.name)
        if not match:
            continue
        scene, number = match.groups()
        mask = folder / f"slice_{scene}_mask_{number}.npy"
        if not mask.is_file():
            raise DataError(f"{path}: its mask {mask.name} is missing; every slice image needs its mask")
        pairs.append(SlicePair(path, mask, scene, f"slice_{scene}_{number}"))
    if not pairs:
        raise DataError(f"{folder}: no slice_S_img_N.npy files")
    return sorted(pairs, key=lambda p: (int(p.scene), p.slice_id))


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read this .npy file ({exc}); is it truncated?") from None


def slice_shape(pair: SlicePair) -> tuple[int, int]:
    shape = _load_npy(pair.image_path).shape
    return int(shape[0]), int(shape[1])


def slice_mask_to_classes(mask: np.ndarray, one_hot: bool = False, source: str = "mask") -> np.ndarray:
    """An (H, W, 3) HKH mask -> (H, W) class indices: clean ice 1, debris 2, else background 0.

    Slices masks are (all glacier, clean, debris); the splits' one-hot masks are
    (clean, debris, background).
    """
    if mask.ndim != 3 or mask.shape[2] < 3:
        raise DataError(f"{source}: expected an (H, W, 3) mask, got shape {mask.shape}")
    clean, debris = (mask[..., 0], mask[..., 1]) if one_hot else (mask[..., 1], mask[..., 2])
    out = np.zeros(mask.shape[:2], dtype=np.uint8)
    out[clean > 0] = CLEAN
    out[debris > 0] = DEBRIS
    return out


def read_slice(
    pair: SlicePair, bands: tuple[str, ...], one_hot: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A slice as float32 (C, H, W) in ``bands`` order and its uint8 (H, W) class mask (255 = NaN)."""
    image = _load_npy(pair.image_path)
    if image.ndim != 3 or image.shape[2] != len(HKH_BANDS):
        raise DataError(
            f"{pair.image_path}: expected (H, W, {len(HKH_BANDS)}) channel-last, got {image.shape}"
        )
    idx = band_indices(bands, HKH_BANDS, str(pair.image_path))
    chosen = np.ascontiguousarray(np.moveaxis(np.asarray(image[..., idx], dtype=np.float32), -1, 0))
    mask = slice_mask_to_classes(_load_npy(pair.mask_path), one_hot, str(pair.mask_path))
    if mask.shape != chosen.shape[1:]:
        raise DataError(f"{pair.mask_path}: mask shape {mask.shape} differs from image {chosen.shape[1:]}")
    mask[np.isnan(chosen).any(axis=0)] = IGNORE_INDEX
    return chosen, mask


# ------------------------------------------------------------------------- label polygons
@dataclass(frozen=True)
class Polygons:
    """Label polygons (GeoJSON-like geometry dicts) in ``crs``."""

    geometries: list[dict]
    crs: CRS
    source: Path


def _geojson_crs(data: dict, path: Path) -> CRS:
    # RFC 7946 GeoJSON is WGS 84; older files name their CRS in a "crs" member.
    name = (data.get("crs") or {}).get("properties", {}).get("name")
    if not name:
        return CRS.from_epsg(4326)
    try:
        return CRS.from_user_input(name)
    except Exception:
        raise DataError(f"{path}: unknown CRS {name!r}") from None


def _read_geojson(path: Path) -> Polygons:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read this GeoJSON ({exc})") from None
    features = data.get("features") if data.get("type") == "FeatureCollection" else [data]
    geometries = [f.get("geometry") if f.get("type") == "Feature" else f for f in features or []]
    return Polygons([g for g in geometries if g], _geojson_crs(data, path), path)


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


def find_vector(folder: Path, layer: str) -> Path:
    """``vector_data/<layer>.geojson|.json|.shp``."""
    for suffix in _VECTOR_SUFFIXES:
        path = folder / f"{layer}{suffix}"
        if path.is_file():
            return path
    raise DataError(
        f"{folder}: no {layer}.geojson or {layer}.shp; raw HKH scenes need clean and debris polygons"
    )


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


# -------------------------------------------------------------------------- raw scenes
def find_raw_scenes(folder: Path) -> list[Path]:
    scenes = sorted(p for p in (folder / "raster_data").iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    if not scenes:
        raise DataError(f"{folder / 'raster_data'}: no .tif scenes")
    return scenes


def scene_band_names(path: Path, descriptions: tuple[str | None, ...]) -> tuple[str, ...]:
    """Canonical names of a raw scene's bands, from its band descriptions (Landsat 7 naming)."""
    if not all(descriptions):
        raise DataError(
            f"{path}: bands lack descriptions ({list(descriptions)}); HKH scenes name their bands "
            "(B1, B2, ..., elevation, slope) so channels can be chosen by name"
        )
    return tuple(canonical_band(d, sensor="L7") for d in descriptions)


def raw_scene_shape(path: Path) -> tuple[int, int]:
    try:
        with rasterio.open(path) as src:
            return src.height, src.width
    except (RasterioError, OSError) as exc:
        raise DataError(f"{path}: cannot read this GeoTIFF ({exc}); is it truncated or not a TIFF?") from None


def iter_raw_scene_tiles(
    path: Path, bands: tuple[str, ...], layers: list[tuple[int, Polygons]], tile_size: int
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(row, col, image (C, T, T) float32, mask (T, T) uint8) for each tile of a raw scene.

    Reads one window at a time, so memory stays at one tile whatever the scene's size; edge
    tiles are padded with NaN / ignore.
    """
    try:
        with rasterio.open(path) as src:
            names = scene_band_names(path, tuple(src.descriptions))
            indexes = [i + 1 for i in band_indices(bands, names, str(path))]
            labels = SceneLabels(layers, src.crs, tuple(src.bounds))
            nodata = src.nodata
            for row in range(0, src.height, tile_size):
                for col in range(0, src.width, tile_size):
                    window = Window(
                        col, row, min(tile_size, src.width - col), min(tile_size, src.height - row)
                    )
                    raw = src.read(indexes, window=window)
                    image = raw.astype(np.float32)
                    if nodata is not None:
                        image[raw == nodata] = np.nan
                    mask = labels.rasterize(
                        src.window_bounds(window),
                        (window.height, window.width),
                        window_transform(window, src.transform),
                    )
                    mask[np.isnan(image).any(axis=0)] = IGNORE_INDEX
                    yield row, col, pad_image(image, tile_size), pad_mask(mask, tile_size)
    except RasterioError as exc:
        raise DataError(f"{path}: cannot read this GeoTIFF ({exc}); is it truncated or not a TIFF?") from None


def read_label_layers(folder: Path) -> list[tuple[int, Polygons]]:
    """The clean-ice and debris polygons of a raw-scenes folder, in burn order."""
    vector = folder / "vector_data"
    return [
        (CLEAN, read_polygons(find_vector(vector, "clean"))),
        (DEBRIS, read_polygons(find_vector(vector, "debris"))),
    ]
