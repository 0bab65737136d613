"""Launched with 2 processes by tests/test_metrics_distributed.py (not a test itself).

    accelerate launch --multi_gpu --num_processes 2 tests/dist_metrics_worker.py OUT.json

Evaluates a fixed random "prediction" over a dataset whose size is not a multiple of
(processes x batch size), gathering per-sample confusion matrices the way the training loop
does; the main process writes the summed matrix and the world size to OUT.json.
"""

from __future__ import annotations

import json
import sys

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset

from glacier.metrics import ConfusionMeter, per_sample_confusion

NUM_SAMPLES = 11  # not divisible by 2 processes x batch size 3
BATCH_SIZE = 3


class RandomMasks(Dataset):
    """Deterministic (prediction, target) pairs with ignore pixels, the same on every process."""

    def __init__(self, size: int = NUM_SAMPLES, side: int = 16) -> None:
        generator = torch.Generator().manual_seed(0)
        self.pred = torch.randint(0, 4, (size, side, side), generator=generator)
        target = torch.randint(0, 4, (size, side, side), generator=generator)
        target[torch.rand(size, side, side, generator=generator) < 0.1] = 255
        self.target = target

    def __len__(self) -> int:
        return len(self.pred)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"pred": self.pred[index], "mask": self.target[index]}


def main(out_path: str) -> None:
    accelerator = Accelerator()
    loader = accelerator.prepare(DataLoader(RandomMasks(), batch_size=BATCH_SIZE, shuffle=False))
    meter = ConfusionMeter()
    seen = 0
    for batch in loader:
        cm = per_sample_confusion(batch["pred"], batch["mask"])
        gathered = accelerator.gather_for_metrics(cm)
        seen += gathered.shape[0]
        meter.update_confusion(gathered)
    if accelerator.is_main_process:
        result = {
            "world_size": accelerator.num_processes,
            "samples": seen,
            "confusion": meter.confusion.tolist(),
        }
        with open(out_path, "w", encoding="utf-8") as handle:
            json.dump(result, handle)
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1])
