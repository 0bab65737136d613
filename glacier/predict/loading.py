"""Load what ``glacier predict`` is pointed at: a model folder, an ensemble folder or a Hub id.

models = load_models("runs/ensemble")            # [(GlacierModel, ModelMeta), ...]
folders = band_folders_for(models[0][0].bands)   # ("Band1", ..., "Band5")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from glacier.domain import COMPETITION_BAND_FOLDERS, COMPETITION_BANDS
from glacier.errors import DataError, ModelError
from glacier.models import GlacierModel, is_model_folder, load_model_folder


def resolve_model_path(path_or_hub_id: str | Path) -> Path:
    """A local model/ensemble folder as is; anything else is looked up on the Hugging Face Hub."""
    path = Path(path_or_hub_id).expanduser()
    if path.exists():
        return path
    from glacier.hub import resolve_model_dir  # imported lazily: only Hub ids need it

    return Path(resolve_model_dir(str(path_or_hub_id)))


def load_named_models(
    path_or_hub_id: str | Path,
    *,
    members: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
) -> list[tuple[str, GlacierModel, Any]]:
    """``[(name, model, meta)]`` of a model folder (one entry) or an ensemble's members.

    ``members`` picks ensemble members by name (in the order given); unknown names are a
    ModelError listing the available ones.
    """
    from glacier.ensemble_folder import is_ensemble_folder, read_ensemble

    path = resolve_model_path(path_or_hub_id)
    if is_model_folder(path):
        if members:
            raise ModelError(f"{path}: a single model folder has no members to pick ({', '.join(members)})")
        model, meta = load_model_folder(path, device=device)
        return [(path.name, model, meta)]
    if not is_ensemble_folder(path):
        raise ModelError(
            f"{path}: neither a model folder (config.json + model.safetensors) nor an ensemble folder "
            "(ensemble.json + members/); point to the output of glacier finetune or glacier ensemble"
        )
    manifest = read_ensemble(path)
    available = {m["name"]: m for m in manifest["members"]}
    names = list(members) if members else list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ModelError(f"{path}: no ensemble member(s) {unknown}; members are {sorted(available)}")
    loaded = []
    for name in names:
        model, meta = load_model_folder(path / available[name]["path"], device=device)
        loaded.append((name, model, meta))
    return loaded


def load_models(
    path_or_hub_id: str | Path,
    *,
    members: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
) -> list[tuple[GlacierModel, Any]]:
    """``[(model, meta)]`` of a model folder, an ensemble folder or a Hub id (see load_named_models)."""
    return [
        (model, meta) for _, model, meta in load_named_models(path_or_hub_id, members=members, device=device)
    ]


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
