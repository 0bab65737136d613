"""Check an exported submission the way the platform runs it, before calling it done.

``solution.py`` runs in a fresh interpreter with the submission folder as working
directory; it is imported as a module and ``maskgeration(imagepath, "model.pth")`` is called
on a few tiles. Its masks are compared with glacier's own predictor on the same model and
test-time augmentation. Its time is measured apart, on full-size tiles (``time_solution``).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from rasterio.errors import NotGeoreferencedWarning

from glacier.data.competition import find_band_root, find_scenes, read_scene_image
from glacier.domain import CLASS_VALUES
from glacier.errors import ModelError
from glacier.normalization import BandStats

ALLOWED_IMPORTS = frozenset(
    {
        "argparse", "collections", "contextlib", "glob", "json", "math", "os", "re", "sys", "time",
        "typing", "warnings", "numpy", "torch", "tifffile", "segmentation_models_pytorch", "cv2",
    }
)  # fmt: skip
"""Top-level modules solution.py may import: the standard library it uses and the platform's packages."""
MAX_MISMATCH_FRACTION = 1e-4
"""Pixels allowed to differ from glacier's predictor (float ties between batch layouts)."""
PROJECTION_TILES = 25

TIMING_TILE_SIZE = 512
"""Competition tiles are 512 x 512: time what the platform will run, not the small check tiles."""
TIMING_TILES = (1, 4)

_DRIVER = """
import json, sys
import numpy as np, torch
import solution
imagepath, model_path, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
masks = solution.maskgeration(imagepath, model_path)
if not isinstance(masks, dict):
    raise SystemExit("maskgeration returned %s, not a dict" % type(masks).__name__)
for key, mask in masks.items():
    if not isinstance(key, str) or not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 2:
        raise SystemExit("maskgeration returned %r: %r; expected str -> 2-D uint8 array" % (key, type(mask)))
np.savez(out, **masks)
print(json.dumps({"torch": torch.__version__, "smp": __import__("segmentation_models_pytorch").__version__}))
"""
_TIMING_DRIVER = """
import json, sys, time
t0 = time.perf_counter()
import solution
t1 = time.perf_counter()
calls = []
for imagepath in json.loads(sys.argv[1]):
    start = time.perf_counter()
    solution.maskgeration(imagepath, sys.argv[2])
    calls.append(time.perf_counter() - start)
print(json.dumps({"import_seconds": t1 - t0, "call_seconds": calls}))
"""


def check_solution_source(path: str | Path) -> None:
    """A ModelError if solution.py uses syntax newer than Python 3.9 or imports outside the platform's packages."""
    source = Path(path).read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=str(path), feature_version=(3, 9))
    except SyntaxError as exc:
        raise ModelError(f"{path}: not valid Python 3.9 ({exc})") from None
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    foreign = sorted(imported - ALLOWED_IMPORTS)
    if foreign:
        raise ModelError(f"{path}: imports {foreign}, which the submission platform does not have")


def write_synthetic_tiles(
    folder: str | Path,
    band_folders: Sequence[str],
    stats: BandStats,
    sizes: Sequence[tuple[int, int]] = ((128, 128), (70, 90)),
    seed: int = 0,
) -> Path:
    """Write random tiles ``imgNNN.tif`` (float32, plain TIFF via tifffile) drawn around ``stats``.

    One size not divisible by common strides is included so the padding path is checked.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    for index, (height, width) in enumerate(sizes, start=1):
        for band, mean, std in zip(band_folders, stats.mean, stats.std, strict=True):
            (folder / band).mkdir(parents=True, exist_ok=True)
            values = mean + (std or 1.0) * rng.standard_normal((height, width))
            tifffile.imwrite(folder / band / f"img{index:03d}.tif", values.astype(np.float32))
    return folder


def copy_first_tiles(source: str | Path, folder: str | Path, max_tiles: int) -> Path:
    """Copy the first ``max_tiles`` tiles (every band folder) of a competition folder into ``folder``."""
    root = find_band_root(source)
    scenes = find_scenes(root, require_labels=False)[:max_tiles]
    folder = Path(folder)
    for scene in scenes:
        for path in scene.band_paths:
            (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / path.parent.name / path.name)
    return folder


def run_solution(
    solution_dir: str | Path,
    band_root: str | Path,
    *,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Import ``solution_dir/solution.py`` in a fresh interpreter and call ``maskgeration``.

    ``imagepath`` maps every Band<N> folder of ``band_root`` to its path, as the platform
    does. Returns ``{"masks": {id: array}, "torch": version, "smp": version}``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "masks.npz"
        report = _run_driver(
            solution_dir, _DRIVER, [json.dumps(_imagepath(band_root)), "model.pth", str(out)], env
        )
        with np.load(out) as data:
            report["masks"] = {key: data[key] for key in data.files}
    return report


def _imagepath(band_root: str | Path) -> dict[str, str]:
    """What the platform passes as ``imagepath``: every Band<N> folder's name -> its path."""
    root = find_band_root(band_root)
    return {
        p.name: str(p.resolve())
        for p in sorted(root.iterdir())
        if p.is_dir() and p.name.lower().startswith("band")
    }


def _run_driver(
    solution_dir: str | Path, driver: str, args: list[str], env: dict[str, str] | None, timeout: float = 1800
) -> dict[str, Any]:
    """Run ``driver`` in a fresh interpreter inside ``solution_dir``; its last stdout line is JSON."""
    proc = subprocess.run(
        [sys.executable, "-c", driver, *args],
        cwd=solution_dir,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise ModelError(
            f"{Path(solution_dir) / 'solution.py'} failed when run as the platform runs it "
            f"(exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare_masks(
    solution_masks: dict[str, np.ndarray], reference_masks: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Pixel disagreement between the solution's masks and reference masks, by tile id."""
    if set(solution_masks) != set(reference_masks):
        raise ModelError(
            f"solution.py returned tile ids {sorted(solution_masks)[:5]}, expected {sorted(reference_masks)[:5]} "
            "(the numeric part of each file name)"
        )
    differing = total = 0
    for tile, expected in reference_masks.items():
        got = solution_masks[tile]
        if got.shape != expected.shape:
            raise ModelError(
                f"solution.py's mask for tile {tile} has shape {got.shape}, expected {expected.shape}"
            )
        unexpected = sorted(set(np.unique(got).tolist()) - set(CLASS_VALUES))
        if unexpected:
            raise ModelError(
                f"solution.py's mask for tile {tile} holds values {unexpected} outside {list(CLASS_VALUES)}"
            )
        differing += int((got != expected).sum())
        total += expected.size
    return {"pixels": total, "differing_pixels": differing, "mismatch_fraction": differing / max(1, total)}


def reference_masks(
    predictor: Any, band_root: str | Path, band_folders: Sequence[str]
) -> dict[str, np.ndarray]:
    """glacier's own masks (0/85/170/255) for every tile of ``band_root``, by tile id."""
    scenes = find_scenes(band_root, require_labels=False, band_folders=band_folders)
    masks = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # synthetic tiles are plain TIFFs
        for scene in scenes:
            masks[scene.tile_id] = predictor.predict_mask(read_scene_image(scene)[0])
    return masks


def time_solution(
    solution_dir: str | Path,
    band_folders: Sequence[str],
    stats: BandStats,
    *,
    tile_size: int = TIMING_TILE_SIZE,
    tiles: tuple[int, int] = TIMING_TILES,
    env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Time ``maskgeration`` as the platform calls it and project a 25-tile test set.

    In one fresh interpreter: import solution.py, then three calls on synthetic tiles of the
    competition's size (``tile_size``): one cold call on one tile (what the platform's single
    call pays once: reading model.pth, moving it to the device, first-forward set-up), then
    warm calls on ``tiles[0]`` and ``tiles[1]`` tiles, whose difference is the time per tile
    without any fixed cost. The projection is import + cold call + 24 more tiles.
    """
    few, many = tiles
    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        for name, count in (("cold", 1), ("few", few), ("many", many)):
            folder = write_synthetic_tiles(
                Path(tmp) / name, band_folders, stats, sizes=[(tile_size, tile_size)] * count
            )
            folders.append({band: str(folder / band) for band in band_folders})
        run = _run_driver(solution_dir, _TIMING_DRIVER, [json.dumps(folders), "model.pth"], env)
    cold, warm_few, warm_many = run["call_seconds"]
    per_tile = max(warm_many - warm_few, 0.0) / (many - few)
    return {
        "import_seconds": round(run["import_seconds"], 3),
        "load_seconds": round(max(cold - per_tile, 0.0), 3),
        "seconds_per_tile": round(per_tile, 4),
        "timing_tile_size": tile_size,
        f"projected_seconds_{PROJECTION_TILES}_tiles": round(
            run["import_seconds"] + cold + (PROJECTION_TILES - 1) * per_tile, 2
        ),
    }


def measure_solution(
    solution_dir: str | Path, band_root: str | Path, *, env: dict[str, str] | None = None
) -> float:
    """Seconds for import + one ``maskgeration`` call over every tile of ``band_root``, in a fresh
    interpreter: what the platform's run of a test set costs (the projection's yardstick)."""
    imagepath = _imagepath(band_root)
    run = _run_driver(solution_dir, _TIMING_DRIVER, [json.dumps([imagepath]), "model.pth"], env)
    return run["import_seconds"] + run["call_seconds"][0]
