"""Validate a saved model with ``glacier.training.loop.validate`` in 1 or N processes.

python training_validate_worker.py MODEL_DIR PREP FOLD OUT.json
accelerate launch --multi_gpu --num_processes 2 training_validate_worker.py ...
"""

from __future__ import annotations

import json
import sys

import torch
from accelerate import Accelerator

from glacier.config import LossConfig
from glacier.data.prepared import PreparedDataset, TileDataset
from glacier.losses import CombinedLoss
from glacier.models import load_model_folder
from glacier.training.loop import validate


def main(model_dir: str, prep: str, fold: int, out: str) -> None:
    accelerator = Accelerator()
    model, meta = load_model_folder(model_dir)
    prepared = PreparedDataset.open(prep)
    _, val_idx = prepared.train_val_indices(fold)
    dataset = TileDataset(prepared, val_idx, bands=meta.bands, stats=meta.normalization)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2)
    model, loader = accelerator.prepare(model, loader)
    metrics = validate(
        accelerator, model, loader, CombinedLoss(**LossConfig().model_dump()), model_stride(model), 4
    )
    if accelerator.is_main_process:
        metrics["world_size"] = accelerator.num_processes
        with open(out, "w") as handle:
            json.dump(metrics, handle)


def model_stride(model) -> int:
    return getattr(model, "module", model).stride


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
