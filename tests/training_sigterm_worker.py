"""One ``fit`` in which only the process of rank 1 gets SIGTERM, after its 2nd step.

accelerate launch --multi_gpu --num_processes 2 training_sigterm_worker.py PREP RUN OUT.json
"""

from __future__ import annotations

import json
import os
import signal
import sys

from glacier.config import load_config
from glacier.training import loop


def main(prep: str, run: str, out: str) -> None:
    rank = int(os.environ["RANK"])  # set by the launcher; asking Accelerate here would set it up too early
    real_step, steps = loop.train_step, [0]

    def step_then_sigterm(*args, **kwargs):
        result = real_step(*args, **kwargs)
        steps[0] += 1
        if steps[0] == 2 and rank == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    loop.train_step = step_then_sigterm
    cfg = load_config(
        "tiny",
        ["training.sampler.samples_per_epoch=32", "training.batch_size=2", "training.log_every=3"],
        data=prep,
        epochs=2,
    )
    result = loop.fit(cfg, out=run)
    with open(f"{out}.rank{rank}", "w", encoding="utf-8") as handle:
        json.dump({"stopped_reason": result.stopped_reason, "epochs_run": result.epochs_run}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:])
