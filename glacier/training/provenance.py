"""What a trained model records about how it was made (the model folder's ``training``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from glacier import __version__
from glacier.config import GlacierConfig
from glacier.data.prepared_format import MANIFEST


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


def dataset_identity(path: str | Path | None) -> dict[str, Any]:
    """What identifies a prepared dataset without its local path: its name and the sha256 of
    its manifest.json (the manifest lists every tile, fold and statistic). {} when absent."""
    if path is None:
        return {}
    try:
        text = (Path(path) / MANIFEST).read_bytes()
        name = json.loads(text).get("dataset")
    except (OSError, ValueError, AttributeError):
        return {}
    return {"name": name, "manifest_sha256": hashlib.sha256(text).hexdigest()}


def portable_config(cfg: GlacierConfig) -> dict[str, Any]:
    """The resolved config as shipped files record it: without local paths (``data.path``
    becomes None: ``dataset_identity`` names the data; ``out`` keeps only the run's folder name)."""
    data = cfg.to_dict()
    data["data"]["path"] = None
    data["out"] = Path(cfg.out).name
    return data


def provenance(cfg: GlacierConfig, prepared, bands, init_report, epochs_run: int) -> dict[str, Any]:
    """The model folder's ``training``: the resolved config (top level, as the model card
    reads it; ``portable_config``) plus where the model came from."""
    manifest = prepared.manifest
    return {
        **portable_config(cfg),
        "dataset": manifest.get("dataset"),
        "pretrain_dataset": init_report.get("source_dataset") if init_report else None,
        "created_by": f"glacier {__version__}",
        "provenance": {
            "glacier_version": __version__,
            "git_commit": git_commit(),
            "dataset": dataset_identity(cfg.data.path),
            "dataset_manifest": {
                key: manifest.get(key) for key in ("dataset", "bands", "tile_size", "num_tiles", "num_folds")
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


MODEL_METRICS = ("mcc", "iou", "f1", "miou", "mean_f1", "pixel_accuracy", "loss", "tiles")
"""The validation metrics a model folder keeps."""


@dataclasses.dataclass(frozen=True)
class ModelWriter:
    """Writes one run's model folders (``best/``, ``last/``) with what each records besides
    its weights: the statistics the run trained with, its sensor bands and how it was made
    (``init_report``: where its first weights came from; None when this process did not
    load them from a model folder)."""

    folder: Any
    """The run's ``RunFolder``."""
    cfg: GlacierConfig
    data: Any
    """The run's ``RunData``."""
    init_report: dict[str, Any] | None

    def write(self, name: str, model, validation: dict[str, Any], epochs_run: int) -> None:
        """Model folder ``name`` of ``model`` after ``epochs_run`` epochs; ``validation``: its
        latest validation metrics ({} when it was never validated)."""
        data = self.data
        self.folder.write_model(
            name,
            model,
            normalization=data.stats,
            metrics=model_metrics(validation, epochs_run),
            training=provenance(self.cfg, data.prepared, data.bands, self.init_report, epochs_run),
            sensor_bands=data.sensor_bands,
            calibration=self.prior_rule(epochs_run),
        )

    def prior_rule(self, epochs_run: int) -> dict[str, Any] | None:
        """The sampler-prior decision rule of a model after ``epochs_run`` epochs, from the
        drawn shares metrics.csv recorded (None when switched off or not recorded)."""
        from glacier.decisions.prior import drawn_counts_from_rows, sampler_prior_rule

        if not self.cfg.training.sampler.prior_correction:
            return None
        drawn = drawn_counts_from_rows(self.folder.metrics_rows(), epochs_run)
        train = self.data.prepared.tile_class_counts[self.data.train_idx].sum(axis=0)
        if drawn is None or train.sum() == 0:
            return None
        return sampler_prior_rule(train, drawn).to_dict()


def model_metrics(validation: dict[str, Any], epochs_run: int) -> dict[str, Any]:
    """The ``metrics`` of a model folder: the kept validation metrics and the epochs trained."""
    return {**{k: validation[k] for k in MODEL_METRICS if k in validation}, "epoch": epochs_run}
