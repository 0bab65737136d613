"""Does training from float16 prepared data (format 2) give the CV MCC of float32 (format 1)?

    python benchmarks/prepared_precision.py               # demo-size data, 5 folds, ~40 min on 2 CPU cores
    python benchmarks/prepared_precision.py --epochs 2    # quicker, noisier

The same sample data (the demo's default size) is preprocessed twice, as format 1 (float32
raw values) and format 2 (float16 standardised values), with the same folds, and the demo's
tiny fine-tuning config is cross-validated from scratch on both with the same seed. Training
on the CPU is deterministic, so the two runs differ only by the stored precision. As the
yardstick of noise, format 1 is trained again with another seed: a difference between the
formats well inside the seed-to-seed difference is no difference.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from glacier.config import load_config
from glacier.data.prepare import PrepareOptions, prepare_competition
from glacier.sampledata import generate_sample_data
from glacier.training.cv import run_cross_validation


def _cv(prepared: Path, out: Path, seed: int, epochs: int) -> list[float]:
    cfg = load_config("tiny", seed=seed).updated(
        **{
            "data.path": str(prepared),
            "data.crop_size": 96,
            "data.num_workers": 0,
            "training.epochs": epochs,
            "training.sampler.samples_per_epoch": 48,
            "checkpoints.keep_last": 1,
        }
    )
    result = run_cross_validation(cfg, out=out, print_fn=lambda message: None)
    return [float(result.folds[k].best_metrics["mcc"]) for k in sorted(result.folds)]


def _row(name: str, values: list[float]) -> str:
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
    return f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {mean:.3f} +/- {std:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="the demo's default fine-tuning epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_sample_data(root / "sample", images=25, size=128, seed=args.seed, test_images=0,
                             hkh_slices=0, hkh_scenes=0)  # fmt: skip
        train = root / "sample" / "competition" / "Train"
        prepared = {}
        for version in (1, 2):
            options = PrepareOptions(tile_size=128, num_folds=5, seed=args.seed, format_version=version)
            prepare_competition(train, root / f"prep_v{version}", options, progress=False)
            size = sum(p.stat().st_size for p in (root / f"prep_v{version}").iterdir())
            prepared[version] = (root / f"prep_v{version}", size)
        rows = [
            ("format 1 (float32), seed A", _cv(prepared[1][0], root / "v1", args.seed, args.epochs)),
            ("format 2 (float16), seed A", _cv(prepared[2][0], root / "v2", args.seed, args.epochs)),
            ("format 1 (float32), seed B", _cv(prepared[1][0], root / "v1b", args.seed + 1, args.epochs)),
        ]
    print(f"25 images of 128 px, 5 folds, tiny config, {args.epochs} epochs x 48 crops of 96 px; "
          f"seed A = {args.seed}, seed B = {args.seed + 1}")  # fmt: skip
    print(f"prepared size: format 1 {prepared[1][1] / 1e6:.2f} MB, format 2 {prepared[2][1] / 1e6:.2f} MB\n")
    print("| data | " + " | ".join(f"fold {k}" for k in range(5)) + " | mean +/- std |")
    print("| --- |" + " ---: |" * 6)
    for name, values in rows:
        print(_row(name, values))
    a, b, c = (values for _, values in rows)
    fmt_gap = sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)
    seed_gap = sum(abs(x - y) for x, y in zip(a, c, strict=True)) / len(a)
    print(
        f"\nmean |fold MCC difference|: float16 vs float32 {fmt_gap:.3f}; seed A vs seed B (float32) {seed_gap:.3f}"
    )


if __name__ == "__main__":
    main()
