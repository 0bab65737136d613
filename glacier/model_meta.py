"""Compatibility names for code written before ``glacier.artifacts`` (remove once no caller is left).

The model folder's format now lives in ``glacier/artifacts/model_config.py`` and
``glacier/artifacts/model.py``.
"""

from __future__ import annotations

from pathlib import Path

from glacier.artifacts.model import ModelFolder
from glacier.artifacts.model_config import ModelMeta

__all__ = ["ModelMeta", "is_model_folder", "read_model_meta"]


def is_model_folder(path: str | Path) -> bool:
    """True if ``path`` holds a glacier model's config.json (``ModelFolder.found_at``)."""
    return ModelFolder.found_at(path)


def read_model_meta(folder: str | Path) -> ModelMeta:
    """A model folder's checked metadata, without the weights (``ModelFolder(folder).verify()``)."""
    return ModelFolder(folder).verify()
