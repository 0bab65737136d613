"""The named choices that commands offer and the library accepts, torch-free.

The CLI turns each tuple into an enum, so ``--help`` lists the values and the shell
completes them; the library checks the same tuples, so a value means one thing everywhere.
"""

from __future__ import annotations

TTA_MODES: tuple[str, ...] = ("none", "flip", "d4")
"""Test-time augmentation: the identity, +2 flips (3 copies), or all 8 dihedral copies."""
SUBMISSION_TTA_MODES: tuple[str, ...] = ("none", "flip")
"""What the exported solution.py may run: heavier TTA timed out (HTTP 504) on the platform."""
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
"""Where prediction runs; ``auto`` takes CUDA when it is available. Pick a GPU with CUDA_VISIBLE_DEVICES."""
