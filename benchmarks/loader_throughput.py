"""Loader throughput: prepared format (memmapped .npy) vs reading the GeoTIFFs per sample.

    python benchmarks/loader_throughput.py [--images 32] [--size 512] [--repeats 2]

Writes a competition-layout folder of 512 x 512 x 5 float32 GeoTIFFs, preprocesses it, then
measures, in one process (= one DataLoader worker), samples per second of:

- ``TileDataset`` on the prepared dataset, with the recipe's augmentation (geometry,
  raw-unit gain/offset, noise, blur, coarse dropout), with the basic augmentation it
  replaced (``TileAugmentation.basic``: flips, a mild warp, band noise) and without;
- a direct reader that opens the 5 band GeoTIFFs + the label with rasterio per sample,
  normalises and applies the same augmentation.

Both run side by side in this run on the same machine, after one warm-up pass each (so
both read from the page cache).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import torch  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from glacier.data.augment import AlbumentationsAugmentation, TileAugmentation  # noqa: E402
from glacier.data.competition import CompetitionScenes  # noqa: E402
from glacier.data.prepare import PrepareOptions, prepare_competition  # noqa: E402
from glacier.data.prepared import PreparedDataset, TileDataset  # noqa: E402
from glacier.domain import CLASS_VALUES, COMPETITION_BAND_FOLDERS  # noqa: E402
from glacier.normalization import normalize  # noqa: E402


def write_dataset(root: Path, images: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    train = root / "Train"
    profile = {
        "driver": "GTiff",
        "count": 1,
        "height": size,
        "width": size,
        "crs": "EPSG:32644",
        "transform": from_origin(300000, 3300000, 30, 30),
    }
    for i in range(images):
        classes = rng.integers(0, 4, (size // 64, size // 64)).repeat(64, 0).repeat(64, 1).astype(np.uint8)
        for b, folder in enumerate(COMPETITION_BAND_FOLDERS):
            (train / folder).mkdir(parents=True, exist_ok=True)
            band = rng.normal(1000 * (b + 1), 100, (size, size)).astype(np.float32)
            with rasterio.open(train / folder / f"img{i:03d}.tif", "w", dtype="float32", **profile) as dst:
                dst.write(band, 1)
        (train / "labels").mkdir(exist_ok=True)
        with rasterio.open(train / "labels" / f"img{i:03d}.tif", "w", dtype="uint8", **profile) as dst:
            dst.write(np.asarray(CLASS_VALUES, np.uint8)[classes], 1)
    return train


class GeoTiffDataset(torch.utils.data.Dataset):
    """The baseline: every sample reads its 5 band files and label with rasterio."""

    def __init__(self, train: Path, stats, augment: bool) -> None:
        self.scenes = CompetitionScenes(train, require_labels=True)
        self.stats = stats
        self.augmentation = TileAugmentation(stats) if augment else None

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.scenes[index]
        image, mask = sample["image"], sample["mask"]
        image = normalize(image, self.stats)
        if self.augmentation is not None:
            image, mask = self.augmentation(image, mask, np.random.SeedSequence([0, 0, index]))
        return {"image": torch.from_numpy(image), "mask": torch.from_numpy(mask.astype(np.int64))}


def throughput(dataset, repeats: int) -> tuple[float, float]:
    """Samples per wall-clock second and per CPU second of this process.

    The second is what one worker achieves with a core to itself: on a shared machine the
    wall-clock figure also counts time spent waiting for a core.
    """
    for i in range(len(dataset)):  # warm-up: page cache, lazy imports
        dataset[i]
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        for i in range(len(dataset)):
            sample = dataset[i]
            assert sample["image"].dtype == torch.float32
    n = repeats * len(dataset)
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # one DataLoader worker = one core
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train = write_dataset(root, args.images, args.size)
        options = PrepareOptions(tile_size=args.size, num_folds=2)
        prepare_competition(train, root / "prep", options, progress=False)
        prepared = PreparedDataset.open(root / "prep")
        rows = [
            ("prepared (memmap), augment", TileDataset(prepared, augment=True)),
            (
                "prepared, basic augment (before)",
                TileDataset(prepared, augment=TileAugmentation.basic(prepared.stats)),
            ),
            ("prepared, albumentations augment", TileDataset(prepared, augment=AlbumentationsAugmentation())),
            ("prepared (memmap), no augment", TileDataset(prepared)),
            ("GeoTIFF (rasterio), augment", GeoTiffDataset(train, prepared.stats, augment=True)),
            ("GeoTIFF (rasterio), no augment", GeoTiffDataset(train, prepared.stats, augment=False)),
        ]
        print(
            f"{args.images} tiles of {args.size} px x 5 bands, one process (= per worker), {args.repeats} passes"
        )
        print(f"  {'loader':<32} {'tiles/s (wall)':>15} {'tiles/s (per CPU s)':>20}")
        results = {}
        for name, dataset in rows:
            results[name] = throughput(dataset, args.repeats)
            print(f"  {name:<32} {results[name][0]:15.1f} {results[name][1]:20.1f}")
        for k, label in ((0, "wall"), (1, "CPU")):
            ratio = results["prepared (memmap), augment"][k] / results["GeoTIFF (rasterio), augment"][k]
            print(f"prepared / GeoTIFF with augmentation ({label}): {ratio:.2f}x")
            ratio = results["prepared (memmap), augment"][k] / results["prepared, albumentations augment"][k]
            print(f"built-in / albumentations augmentation ({label}): {ratio:.2f}x")
            ratio = results["prepared (memmap), augment"][k] / results["prepared, basic augment (before)"][k]
            print(f"recipe / basic augmentation ({label}): {ratio:.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
