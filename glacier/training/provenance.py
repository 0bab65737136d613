"""What a trained model records about how it was made (the model folder's ``training``)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from glacier import __version__
from glacier.config import GlacierConfig


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(cfg: GlacierConfig, prepared, bands, init_report, epochs_run: int) -> dict[str, Any]:
    """The model folder's ``training``: the resolved config (top level, as the model card
    reads it) plus where the model came from."""
    manifest = prepared.manifest
    return {
        **cfg.to_dict(),
        "dataset": manifest.get("dataset"),
        "pretrain_dataset": init_report.get("source_dataset") if init_report else None,
        "created_by": f"glacier {__version__}",
        "provenance": {
            "glacier_version": __version__,
            "git_commit": git_commit(),
            "dataset_manifest": {
                key: manifest.get(key)
                for key in ("dataset", "source", "bands", "tile_size", "num_tiles", "num_folds")
            },
            "bands": list(bands),
            "fold": None if cfg.data.use_all_for_training else cfg.data.fold,
            "seed": cfg.training.seed,
            "epochs_run": epochs_run,
            "init_from": init_report.get("source") if init_report else None,
            "init_from_hub": init_report.get("source_hub") if init_report else None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    }
