"""Training-loop overhead: ``fit``'s step (glacier.training.step.train_step, under Accelerate)
versus a bare PyTorch loop over the same model, batch and loss, measured alternately.

    python benchmarks/loop_overhead.py                 # speed ratio + peak memory at 512 px
    python benchmarks/loop_overhead.py --size 128 --rounds 7 --steps 5

Speed: rounds alternate (fit, bare, fit, bare, ...) so that drifts in machine load hit both;
the median time per step of each is compared (goal: ratio <= 1.05). Memory: each variant
runs a few steps at ``--memory-size`` px in a fresh subprocess; on CUDA the peak allocated
memory, on CPU the peak resident set size (ru_maxrss; tracemalloc does not see torch).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from glacier.config import load_config


def build(size: int, batch: int, encoder: str, seed: int = 0):
    from glacier.losses import CombinedLoss
    from glacier.models import build_model

    cfg = load_config(
        "tiny", [f"model.encoder={encoder}", "model.encoder_depth=5", "model.decoder_channels=null"]
    )
    torch.manual_seed(seed)
    bands = ("blue", "green", "red", "swir1", "tir")
    model = build_model(cfg.model, bands)
    generator = torch.Generator().manual_seed(seed)
    batch_data = {
        "image": torch.randn(batch, len(bands), size, size, generator=generator),
        "mask": torch.randint(0, 4, (batch, size, size), generator=generator),
    }
    return cfg, model, CombinedLoss(**cfg.training.loss.model_dump()), batch_data


def bare_step(model, batch, loss_fn, optimizer, max_grad_norm):
    logits, boundary_logits = model(batch["image"], with_boundary=True)
    loss, _ = loss_fn(logits, batch["mask"], boundary_logits)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


class Runner:
    """One variant: its own model copy and optimizer; ``run(n)`` returns seconds per step."""

    def __init__(self, kind: str, cfg, model, loss_fn, batch, accelerator=None) -> None:
        from glacier.training.builders import build_optimizer
        from glacier.training.step import train_step

        self.kind, self.cfg = kind, cfg
        device = (
            accelerator.device
            if accelerator
            else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        model = copy.deepcopy(model).to(device).train()
        optimizer = build_optimizer(model.parameters(), cfg.training.optimizer)
        self.loss_fn = copy.deepcopy(loss_fn).to(device)
        self.batch = {k: v.to(device) for k, v in batch.items()}
        if kind == "fit":
            model, optimizer = accelerator.prepare(model, optimizer)

            def step():
                return train_step(
                    accelerator, model, self.batch, self.loss_fn, optimizer, cfg.training.max_grad_norm
                ).loss
        else:

            def step():
                return bare_step(model, self.batch, self.loss_fn, optimizer, cfg.training.max_grad_norm)

        self.step = step
        self.device = device

    def run(self, steps: int) -> float:
        self._sync()
        start = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        float(loss)  # both variants end with the same host sync
        self._sync()
        return (time.perf_counter() - start) / steps

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def speed(args) -> None:
    from accelerate import Accelerator

    cfg, model, loss_fn, batch = build(args.size, args.batch, args.encoder)
    accelerator = Accelerator()
    runners = [
        Runner("fit", cfg, model, loss_fn, batch, accelerator),
        Runner("bare", cfg, model, loss_fn, batch),
    ]
    for runner in runners:
        runner.run(args.warmup)
    times: dict[str, list[float]] = {"fit": [], "bare": []}
    for r in range(args.rounds):
        for runner in runners if r % 2 == 0 else runners[::-1]:
            times[runner.kind].append(runner.run(args.steps))
    fit_t, bare_t = statistics.median(times["fit"]), statistics.median(times["bare"])
    print(
        f"step time ({args.encoder}, batch {args.batch} x {args.size} px, {accelerator.device}, "
        f"median of {args.rounds} rounds x {args.steps} steps): fit {fit_t * 1000:.1f} ms, "
        f"bare {bare_t * 1000:.1f} ms, ratio {fit_t / bare_t:.3f} (goal <= 1.05)"
    )


def memory_child(kind: str, args) -> None:
    from accelerate import Accelerator

    cfg, model, loss_fn, batch = build(args.memory_size, args.batch, args.encoder)
    runner = Runner(kind, cfg, model, loss_fn, batch, Accelerator() if kind == "fit" else None)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    runner.run(3)
    if torch.cuda.is_available():
        peak, unit = torch.cuda.max_memory_allocated(), "cuda max_memory_allocated"
    else:
        peak, unit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "peak RSS"
    print(json.dumps({"kind": kind, "peak_bytes": peak, "measure": unit}))


def memory(args) -> None:
    results = {}
    for kind in ("fit", "bare"):
        command = [sys.executable, __file__, "--memory-child", kind, "--memory-size", str(args.memory_size),
                   "--batch", str(args.batch), "--encoder", args.encoder]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ)
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    fit_b, bare_b = results["fit"]["peak_bytes"], results["bare"]["peak_bytes"]
    print(
        f"peak memory ({results['fit']['measure']}, batch {args.batch} x {args.memory_size} px): "
        f"fit {fit_b / 2**20:.0f} MiB, bare {bare_b / 2**20:.0f} MiB, ratio {fit_b / bare_b:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--memory-size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--memory-child", choices=("fit", "bare"))
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args)
        return
    speed(args)
    memory(args)


if __name__ == "__main__":
    main()
