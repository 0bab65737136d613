"""Writing an ``.npy`` file of known shape one row at a time, with plain file writes.

A memory-mapped output (``numpy.lib.format.open_memmap``) turns a full disk into SIGBUS, a
crash without a message, and keeps every written page in the process's resident memory;
buffered writes fail with an OSError (ENOSPC) that can be reported, and memory stays at one
row. The file is the same bytes ``np.save`` writes for the whole array.

    with NpyRowWriter(path, (n, c, t, t), np.float16) as rows:
        for tile in tiles:
            rows.append(tile)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np
from numpy.lib import format as npy_format


class NpyRowWriter:
    """Writes ``shape[0]`` rows of ``shape[1:]`` into a new ``.npy`` file at ``path``."""

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype) -> None:
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.rows = 0
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        header = {"descr": npy_format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        npy_format.write_array_header_1_0(self._file, header)

    def append(self, row: np.ndarray) -> None:
        """Write the next row (converted to the file's dtype)."""
        data = np.ascontiguousarray(row, dtype=self.dtype)
        if data.shape != self.shape[1:]:
            raise ValueError(f"{self.path}: row of shape {data.shape}, expected {self.shape[1:]}")
        if self.rows == self.shape[0]:
            raise ValueError(f"{self.path}: all {self.shape[0]} rows are written")
        with self._naming_errors():
            self._file.write(data.data)
        self.rows += 1

    def close(self) -> None:
        """Flush to disk (a full disk shows here at the latest) and close."""
        if self._file.closed:
            return
        try:
            with self._naming_errors():
                self._file.flush()
                os.fsync(self._file.fileno())
        finally:
            with contextlib.suppress(OSError):
                self._file.close()
        if self.rows != self.shape[0]:
            raise ValueError(f"{self.path}: {self.rows} of {self.shape[0]} rows written")

    @contextlib.contextmanager
    def _naming_errors(self) -> Iterator[None]:
        """File writes raise OSErrors without the file's name: add it (ENOSPC names the file)."""
        try:
            yield
        except OSError as exc:
            if exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None

    def __enter__(self) -> NpyRowWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            # The folder is discarded: keep the first error, not one from flushing.
            with contextlib.suppress(OSError):
                self._file.close()
