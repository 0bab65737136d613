"""The CLI's enums, made from the library's torch-free choice tuples (glacier.options).

Typer shows an enum's values in ``--help``, completes them in the shell and rejects any
other value with a usage error that lists them.
"""

from __future__ import annotations

from enum import Enum

from glacier.options import DEVICES, SUBMISSION_TTA_MODES, TTA_MODES


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    return Enum(name, {value: value for value in values}, type=str)


Tta = _choices("Tta", TTA_MODES)
SubmissionTta = _choices("SubmissionTta", SUBMISSION_TTA_MODES)
Device = _choices("Device", DEVICES)
