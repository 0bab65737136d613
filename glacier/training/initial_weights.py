"""Where a run's weights start: a pretrained model folder, run folder or Hub id, bands matched by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from glacier.errors import ModelError


def open_init_source(init_from: str | Path):
    """The ``ModelFolder`` a run starts from: a model folder (also an ensemble member), a run
    folder (its ``best``) or a Hub id, as ``open_artifact`` decides; an ensemble is an error."""
    from glacier.artifacts import EnsembleFolder, open_artifact

    try:
        artifact = open_artifact(init_from)
    except ModelError as exc:
        raise ModelError(f"--init-from {init_from}: {exc}") from None
    if isinstance(artifact, EnsembleFolder):
        raise ModelError(
            f"--init-from {init_from}: is an ensemble; start from one member, e.g. "
            f"{artifact.path / EnsembleFolder.MEMBERS / '<name>'}"
        )
    return artifact


def init_weights(model, init_from: str | Path, bands: tuple[str, ...]) -> dict[str, Any]:
    """Load ``init_from``'s weights into ``model`` (first-layer filters matched by band name);
    the transfer report, with where the weights came from: ``source`` (the local folder),
    ``source_hub`` (``{"repo_id", "revision"}`` when it was a Hub id, else None) and
    ``source_dataset``."""
    from glacier.models import transfer_weights

    folder = open_init_source(init_from)
    source, meta = folder.load()
    report = transfer_weights(source.state_dict(), meta.bands, model, bands)
    report["source"] = str(folder.path)
    report["source_hub"] = (
        {"repo_id": folder.repo_id, "revision": folder.revision} if folder.repo_id else None
    )
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
