"""Load what ``glacier predict`` is pointed at: a model, ensemble or run folder, or a Hub id.

models = load_models("runs/ensemble")            # [(GlacierModel, ModelMeta), ...]
folders = band_folders_for(models[0][0].bands)   # ("Band1", ..., "Band5")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from glacier.artifacts import EnsembleFolder, ModelFolder, open_artifact
from glacier.domain import COMPETITION_BAND_FOLDERS, COMPETITION_BANDS
from glacier.errors import DataError, ModelError
from glacier.models import GlacierModel


def load_named_models(
    source: str | Path | ModelFolder | EnsembleFolder,
    *,
    members: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
) -> list[tuple[str, GlacierModel, Any]]:
    """``[(name, model, meta)]`` of a model folder (one entry) or an ensemble's members.

    ``source`` is anything ``open_artifact`` opens, or an opened artifact. ``members`` picks
    ensemble members by name (in the order given); unknown names are a ModelError listing
    the available ones.
    """
    artifact = source if isinstance(source, (ModelFolder, EnsembleFolder)) else open_artifact(source)
    if isinstance(artifact, ModelFolder):
        if members:
            raise ModelError(
                f"{artifact.path}: a single model folder has no members to pick ({', '.join(members)})"
            )
        model, meta = artifact.load(device)
        return [(artifact.path.name, model, meta)]
    available = artifact.members()
    names = list(members) if members else list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ModelError(f"{artifact.path}: no ensemble member(s) {unknown}; members are {sorted(available)}")
    return [(name, *available[name].load(device)) for name in names]


def load_models(
    source: str | Path | ModelFolder | EnsembleFolder,
    *,
    members: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
) -> list[tuple[GlacierModel, Any]]:
    """``[(model, meta)]`` of a model or ensemble folder, a run folder or a Hub id (see load_named_models)."""
    return [(model, meta) for _, model, meta in load_named_models(source, members=members, device=device)]


def band_folders_for(bands: Sequence[str]) -> tuple[str, ...]:
    """The competition band folders holding ``bands`` (canonical names), in the model's order.

    A band the competition data lacks (e.g. ``nir`` of a 7-band HKH model) is a DataError:
    such a model cannot read competition folders.
    """
    missing = [b for b in bands if b not in COMPETITION_BANDS]
    if missing:
        available = ", ".join(
            f"{f}={b}" for f, b in zip(COMPETITION_BAND_FOLDERS, COMPETITION_BANDS, strict=True)
        )
        raise DataError(
            f"the model takes bands {list(bands)}, but {missing} have no competition band folder "
            f"({available}); use a model trained on competition bands (fine-tune it with glacier finetune)"
        )
    return tuple(COMPETITION_BAND_FOLDERS[COMPETITION_BANDS.index(b)] for b in bands)
