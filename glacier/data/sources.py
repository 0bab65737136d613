"""What ``glacier preprocess`` reads: a source dataset of images, each cut into tiles.

Competition scenes (``glacier.data.competition``), HKH slices and HKH raw scenes
(``glacier.data.hkh``) are all ImageSources, so the prepared-dataset writer reads any of
them the same way:

    source = CompetitionScenes("Train")
    sample = source[0]                      # {"id", "image" (C, H, W) float32, "mask" (H, W) uint8}
    record = source.record(0)               # id, fold group, file and size, without reading pixels
    for tile in source.tiles(0, 512):       # {"row", "col", "image" (C, T, T), "mask" (T, T)}
        ...

Images hold NaN in every band at fill (``glacier.data.fill``); masks hold class indices 0..3
and 255 (ignore) there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from glacier.data.tiling import cut_tile, tile_offsets


@dataclass(frozen=True)
class ImageRecord:
    """One source image as the prepared dataset's manifest lists it."""

    id: str
    group: str
    """Images of one group share a fold (an image, or the scene HKH slices were cut from)."""
    source: str
    """Its file, relative to the source folder."""
    height: int
    width: int


class ImageSource(ABC):
    """Images addressed by index 0..len-1, each read as one sample dict."""

    dataset: str
    """Which dataset this is (``competition``, ``hkh``), as the manifest names it."""
    bands: tuple[str, ...]
    """Canonical names of the image channels, in order."""
    sensor_bands: tuple[str, ...]
    """The sensor's names of the same channels (Landsat 8/9 for the competition, 7 for HKH)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> dict[str, Any]:
        """``{"id", "image", "mask", ...}`` of image ``index``, read whole."""

    @abstractmethod
    def record(self, index: int) -> ImageRecord:
        """Id, group, file and size of image ``index`` (from file headers only)."""

    def labels_snapped(self) -> int:
        """Label pixels moved to the nearest class value so far (sources that snap labels)."""
        return 0

    def tiles(self, index: int, tile_size: int) -> Iterator[dict[str, Any]]:
        """Every T x T tile of image ``index``, row-major, edge tiles padded with NaN / ignore.

        This reads the image whole; a source of large scenes reads them window by window.
        """
        sample = self[index]
        for row, col in tile_offsets(*sample["mask"].shape, tile_size):
            image, mask = cut_tile(sample["image"], sample["mask"], row, col, tile_size)
            yield {"row": row, "col": col, "image": image, "mask": mask}
