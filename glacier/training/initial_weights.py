"""Where a run's weights start: a pretrained model folder or Hub id, bands matched by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from glacier.errors import ModelError


def resolve_init_source(init_from: str | Path) -> Path:
    """A model folder (also an ensemble member or a run folder's ``best``) or a Hub id -> a
    local model folder."""
    from glacier.ensemble_folder import is_ensemble_folder
    from glacier.models import is_model_folder

    path = Path(init_from).expanduser()
    if path.exists():
        if is_model_folder(path):
            return path
        if is_model_folder(path / "best"):
            return path / "best"
        if is_ensemble_folder(path):
            raise ModelError(
                f"--init-from {init_from}: is an ensemble; start from one member, e.g. {path / 'members' / '<name>'}"
            )
        raise ModelError(f"--init-from {init_from}: not a model folder (no glacier-model config.json)")
    from glacier.hub import resolve_model_dir  # not a local folder: a Hub id (or a clear error)

    return Path(resolve_model_dir(str(init_from)))


def init_weights(model, init_from: str | Path, bands: tuple[str, ...]) -> dict[str, Any]:
    """Load ``init_from``'s weights into ``model`` (first-layer filters matched by band name); the
    transfer report, with its source folder and dataset."""
    from glacier.models import load_model_folder, transfer_weights

    folder = resolve_init_source(init_from)
    source, meta = load_model_folder(folder)
    report = transfer_weights(source.state_dict(), meta.bands, model, bands)
    report["source"] = str(folder)
    report["source_dataset"] = meta.training.get("dataset")
    return report


def init_report_line(report: dict[str, Any]) -> str:
    line = (
        f"initialised from {report['source']}: {report['loaded']} tensors loaded; "
        f"bands matched {report['matched_bands']}"
    )
    if report.get("unmatched_bands"):
        line += f", new (mean filter) {report['unmatched_bands']}"
    if report.get("dropped_bands"):
        line += f", dropped {report['dropped_bands']}"
    if report.get("skipped"):
        line += f"; {len(report['skipped'])} tensors skipped (shape/name differ)"
    return line


def freeze_unused_parameters(model, in_channels: int) -> list[str]:
    """Freeze parameters the forward pass never uses; return their names.

    DDP waits for a gradient of every trainable parameter, and some models carry modules
    they do not run (an smp encoder built with ``encoder_depth`` < 5 keeps its deeper
    stages). Freezing those is exact (they would never change) and cheaper than DDP's
    ``find_unused_parameters``. One forward/backward on a small zero input, in eval mode
    so that batch-norm statistics stay untouched.
    """
    size = max(64, 2 * model.stride)
    was_training = model.training
    model.eval()
    logits, boundary_logits = model(torch.zeros(1, in_channels, size, size), with_boundary=True)
    total = logits.sum() + (boundary_logits.sum() if boundary_logits is not None else 0)
    total.backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    for name, p in model.named_parameters():
        if name in unused:
            p.requires_grad_(False)
    return unused
