"""Out-of-fold predictions: what one cross-validation run's model predicted for the tiles it
never trained on, written into its run folder (``RUN/oof/``).

    RUN/oof/
      oof.json            {"format": "glacier-oof", "format_version": 1, "fold": 0, "tta": "flip",
                           "model": "best", "prepared": "<prepared dataset>", "tiles": [3, 7, ...],
                           "images": ["003", "007", ...], "classes": [...], "dtype": "float16"}
      probabilities.npy   float16 (N, K, T, T): class probabilities of each validation tile
      labels.npy          uint8 (N, T, T): its class indices, 255 = ignore (no data, padding)

``tiles`` are tile indices of the prepared dataset (``prepared``: where the labels come from),
``images`` their image ids. The labels are copied beside the probabilities (a quarter of their
size) so that a run folder's OOF stays usable when the prepared dataset has moved, as it does
between notebook sessions. Probabilities are float16, not uint8: calibration works on
log-probabilities, and uint8 (steps of 1/255) turns every probability below 0.002 into 0.

Reading imports no torch; the folder is written atomically (``OofFolder.write``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glacier import atomic
from glacier.errors import DataError

OOF_FORMAT = "glacier-oof"
OOF_FORMAT_VERSION = 1


class OofFolder:
    """One run's out-of-fold predictions on disk (see the module docstring)."""

    META = "oof.json"
    PROBABILITIES = "probabilities.npy"
    LABELS = "labels.npy"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._meta: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"OofFolder({str(self.path)!r})"

    def exists(self) -> bool:
        """Whether a complete OOF folder is here (its metadata is written last)."""
        return (self.path / self.META).is_file()

    @property
    def meta(self) -> dict[str, Any]:
        """The checked ``oof.json``."""
        if self._meta is None:
            path = self.path / self.META
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
            except OSError:
                raise DataError(f"{path}: missing; the run wrote no out-of-fold predictions") from None
            except ValueError as exc:
                raise DataError(
                    f"{path}: not valid JSON ({exc}); delete {self.path} to recompute it"
                ) from None
            if not isinstance(meta, dict) or meta.get("format") != OOF_FORMAT:
                raise DataError(f"{path}: not glacier out-of-fold predictions")
            if int(meta.get("format_version", 0)) > OOF_FORMAT_VERSION:
                raise DataError(
                    f"{path}: format_version {meta['format_version']} is newer than this glacier reads"
                )
            self._meta = meta
        return self._meta

    @property
    def fold(self) -> int:
        return int(self.meta["fold"])

    @property
    def split_seed(self) -> int | None:
        """The seed the run's folds were re-split with (None: the prepared dataset's own)."""
        value = self.meta.get("split_seed")
        return None if value is None else int(value)

    @property
    def tiles(self) -> np.ndarray:
        return np.asarray(self.meta["tiles"], dtype=np.int64)

    def probabilities(self) -> np.ndarray:
        """float16 (N, K, T, T), memory-mapped."""
        return self._array(self.PROBABILITIES, ndim=4)

    def labels(self) -> np.ndarray:
        """uint8 (N, T, T), memory-mapped."""
        return self._array(self.LABELS, ndim=3)

    def _array(self, name: str, ndim: int) -> np.ndarray:
        path = self.path / name
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot be read ({exc}); delete {self.path} to recompute it") from None
        if array.ndim != ndim or len(array) != len(self.meta["tiles"]):
            raise DataError(
                f"{path}: shape {array.shape} does not match the {len(self.meta['tiles'])} tiles of {self.META}"
            )
        return array

    @classmethod
    def write(
        cls,
        path: str | Path,
        probabilities: np.ndarray,
        labels: np.ndarray,
        *,
        fold: int,
        tiles: Sequence[int],
        images: Sequence[str],
        **meta: Any,
    ) -> OofFolder:
        """Write an OOF folder atomically; ``meta`` adds keys to oof.json (tta, model, prepared...)."""
        probabilities = np.asarray(probabilities, dtype=np.float16)
        labels = np.asarray(labels, dtype=np.uint8)
        if not (len(probabilities) == len(labels) == len(tiles) == len(images)):
            raise ValueError("probabilities, labels, tiles and images must have one entry per tile")
        record = {
            "format": OOF_FORMAT,
            "format_version": OOF_FORMAT_VERSION,
            "fold": int(fold),
            "tiles": [int(t) for t in tiles],
            "images": [str(i) for i in images],
            "dtype": "float16",
            **meta,
        }
        folder = cls(path)
        with atomic.atomic_dir(folder.path) as tmp:
            np.save(tmp / cls.PROBABILITIES, probabilities)
            np.save(tmp / cls.LABELS, labels)
            atomic.write_json(tmp / cls.META, record)
        return folder
