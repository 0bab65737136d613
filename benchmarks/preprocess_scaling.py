"""Preprocessing cost against the number of raw HKH scenes: time grows linearly, memory stays flat.

    python benchmarks/preprocess_scaling.py                    # 1, 4 and 16 scenes of 512 x 512 px
    python benchmarks/preprocess_scaling.py --counts 1 4 16 64 --shape 1024 1024

Scenes come from the sample-data generator (15-band Landsat 7 GeoTIFFs with zero-filled
edges and SLC-off gaps, label polygons in GeoJSON). Each count runs ``glacier preprocess hkh``
in a fresh Python process over the first N scenes (the same polygon files every time) and
reports wall time and the process's peak resident memory (VmHWM). Raw scenes are
read window by window and the arrays are written one tile at a time, so the peak should
not depend on N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Peak RSS of this process image: VmHWM of /proc/self/status. getrusage's ru_maxrss would do,
# but Linux carries it over from the parent through fork and exec, so a child started by a
# large parent reports the parent's size.
_PEAK = """
def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""
_CHILD = (
    _PEAK
    + """
import json, sys, time
start = time.perf_counter()
from glacier.data.prepare import PrepareOptions, prepare_hkh
summary = prepare_hkh(sys.argv[1], sys.argv[2], options=PrepareOptions(tile_size=int(sys.argv[3]), num_folds=1),
                      progress=False)
seconds = time.perf_counter() - start
print(json.dumps({"tiles": summary.num_tiles, "seconds": seconds, "peak_mib": peak_mib()}))
"""
)
_IMPORT_ONLY = (
    _PEAK
    + """
import json
import glacier.data.prepare  # noqa: F401
print(json.dumps({"peak_mib": peak_mib()}))
"""
)


def _run(code: str, *args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _scene_set(source: Path, folder: Path, count: int) -> Path:
    """``folder`` holding the first ``count`` scenes of ``source`` (links) and all its polygons."""
    (folder / "raster_data").mkdir(parents=True)
    for scene in sorted((source / "raster_data").glob("*.tif"))[:count]:
        (folder / "raster_data" / scene.name).symlink_to(scene)
    (folder / "vector_data").symlink_to(source / "vector_data")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--shape", type=int, nargs=2, default=[512, 512], help="scene height and width (px)")
    parser.add_argument("--tile-size", type=int, default=128)
    args = parser.parse_args()

    from glacier.sampledata import generate_sample_data

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_sample_data(root / "sample", images=1, size=32, test_images=0, hkh_slices=0,
                             hkh_scenes=max(args.counts), hkh_scene_shape=tuple(args.shape))  # fmt: skip
        source = root / "sample" / "hkh"
        baseline = _run(_IMPORT_ONLY)["peak_mib"]
        print(f"raw HKH scenes of {args.shape[0]} x {args.shape[1]} px, 15 bands, {args.tile_size} px tiles; "
              f"one process per row (import alone: {baseline:.0f} MiB peak)\n")  # fmt: skip
        print("| scenes | tiles | seconds | seconds per scene | peak RSS (MiB) |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        rows = []
        for count in args.counts:
            folder = _scene_set(source, root / f"set_{count}", count)
            row = _run(_CHILD, str(folder), str(root / f"prep_{count}"), str(args.tile_size))
            rows.append(row)
            print(f"| {count} | {row['tiles']} | {row['seconds']:.1f} | {row['seconds'] / count:.2f} | "
                  f"{row['peak_mib']:.0f} |", flush=True)  # fmt: skip
        first, last = rows[0], rows[-1]
        print(f"\npeak memory {last['peak_mib'] / first['peak_mib']:.2f}x from {args.counts[0]} to {args.counts[-1]} "
              f"scenes; time per scene {last['seconds'] / args.counts[-1] / (first['seconds'] / args.counts[0]):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
