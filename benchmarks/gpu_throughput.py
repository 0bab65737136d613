"""Training throughput and peak memory per GPU for the Kaggle presets, at fp16.

    python benchmarks/gpu_throughput.py            # every Kaggle preset, on every visible GPU
    python benchmarks/gpu_throughput.py --auto     # also what --batch-size auto picks there
    python benchmarks/gpu_throughput.py --steps 50 --warmup 10 --precision bf16

Each preset's model (boundary-aware U-Net, its encoder), loss and optimizer, at its crop
size and per-process batch size, on random 5-band inputs: the training step that
``--batch-size auto`` tries (``glacier.training.batch_size.TrainingTrial``: autocast
forward, scaled backward, clipping, optimizer step), timed after a warm-up on each GPU in
turn, alone. A third row runs the fine-tuning preset at whole 512 px tiles, where the
seed's documentation claimed about 150 images/s on one T4 for a ResNet34 U-Net.

images/s is per GPU: under ``accelerate launch`` with two processes each GPU trains its
own batch, plus a gradient all-reduce per step that this does not time. Peak memory is
``torch.cuda.max_memory_allocated`` (what tensors held) and ``max_memory_reserved`` (what
the caching allocator took from the device).

Without a GPU it runs a reduced mode (64 px crops, batch 2, full precision, few steps) to
show that the benchmark works, and says so: those figures are not GPU figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time

import torch

from glacier.config import load_config
from glacier.domain import COMPETITION_BANDS
from glacier.training.batch_size import DEFAULT_MARGIN, TrainingTrial, largest_fitting, with_margin

SEED_CLAIM = "about 150 images/s on one T4 (ResNet34 U-Net, 512 px), claimed in the seed's docs"


@dataclasses.dataclass(frozen=True)
class Case:
    label: str
    preset: str
    crop_size: int | None = None
    """None: the preset's data.crop_size."""


CASES = (
    Case("HKH pretraining", "hkh_pretrain_kaggle"),
    Case("competition fine-tuning", "competition_finetune_kaggle"),
    Case("fine-tuning, whole 512 px tiles", "competition_finetune_kaggle", crop_size=512),
)
CPU_CROP, CPU_BATCH = 64, 2


def measure(case: Case, device: torch.device, args, reduced: bool) -> dict:
    """Throughput and peak memory of one case on one device (and the auto batch size)."""
    cfg = load_config(case.preset)
    crop = CPU_CROP if reduced else (case.crop_size or cfg.data.crop_size)
    batch = CPU_BATCH if reduced else cfg.training.batch_size
    trial = TrainingTrial(cfg, COMPETITION_BANDS, crop, device, "no" if reduced else args.precision)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        trial.step(batch)
    trial.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        trial.step(batch)
    trial.synchronize()
    seconds = time.perf_counter() - start
    row = {
        "case": case.label,
        "preset": case.preset,
        "crop": crop,
        "batch": batch,
        "images_per_s": batch * args.steps / seconds,
        "step_ms": 1000 * seconds / args.steps,
    }
    if device.type == "cuda":
        row["peak_allocated_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        row["peak_reserved_gib"] = torch.cuda.max_memory_reserved(device) / 2**30
    else:
        row["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30
    if args.auto and not reduced:
        largest = largest_fitting(lambda n: trial.fits(n), start=batch, limit=args.max_batch)
        row["auto_largest"], row["auto_batch"] = (
            largest,
            with_margin(largest, DEFAULT_MARGIN) if largest else 0,
        )
    trial.model = trial.optimizer = None
    trial.release()
    return row


def print_rows(rows: list[dict], device_line: str) -> None:
    print(f"\n{device_line}")
    memory = "peak allocated / reserved GiB" if "peak_allocated_gib" in rows[0] else "peak RSS GiB (process)"
    auto = " | auto: largest fit -> batch" if "auto_batch" in rows[0] else ""
    print(f"| case | preset | crop | batch | images/s | ms/step | {memory}{auto} |")
    print("|" + " --- |" * (7 + bool(auto)))
    for r in rows:
        mem = (
            f"{r['peak_allocated_gib']:.2f} / {r['peak_reserved_gib']:.2f}"
            if "peak_allocated_gib" in r
            else f"{r['peak_rss_gib']:.2f}"
        )
        extra = f" | {r['auto_largest']} -> {r['auto_batch']}" if "auto_batch" in r else ""
        print(
            f"| {r['case']} | {r['preset']} | {r['crop']} | {r['batch']} | {r['images_per_s']:.1f} "
            f"| {r['step_ms']:.0f} | {mem}{extra} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20, help="timed steps per case (GPU)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precision", choices=("fp16", "bf16", "no"), default="fp16")
    parser.add_argument(
        "--auto", action="store_true", help="also search the largest batch (--batch-size auto)"
    )
    parser.add_argument("--max-batch", type=int, default=256, help="cap of the --auto search")
    args = parser.parse_args(argv)

    if not torch.cuda.is_available():
        args.steps, args.warmup = min(args.steps, 2), min(args.warmup, 1)
        print(
            f"CPU: no GPU found. Reduced mode ({CPU_CROP} px crops, batch {CPU_BATCH}, full precision, "
            f"{args.steps} steps after {args.warmup} warm-up): these show that the benchmark runs, "
            "they are not GPU figures. Run it on a GPU for those."
        )
        rows = [measure(case, torch.device("cpu"), args, reduced=True) for case in CASES]
        print_rows(rows, f"cpu, {torch.get_num_threads()} threads")
        return

    print(
        f"precision {args.precision}, {args.steps} timed steps after {args.warmup} warm-up, 5 bands, random inputs"
    )
    for index in range(torch.cuda.device_count()):
        device = torch.device("cuda", index)
        props = torch.cuda.get_device_properties(device)
        rows = [measure(case, device, args, reduced=False) for case in CASES]
        print_rows(rows, f"{device}: {props.name}, {props.total_memory / 2**30:.1f} GiB")
    print(f"\nfor comparison: {SEED_CLAIM}")


if __name__ == "__main__":
    main()
