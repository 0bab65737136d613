"""Do members of another kind (encoder family, loss, ...) make an ensemble that beats its best member?

    python benchmarks/ensemble_gain.py --test-images 20 --out /tmp/gain          # the demo runs
    python benchmarks/ensemble_encoder_mix.py --runs /tmp/gain --seeds 0,1,2      # ~3 min a seed
    python benchmarks/ensemble_encoder_mix.py --runs /tmp/gain --reuse-pretraining \
        --change training.loss.mcc_weight=0 --change training.loss.focal_gamma=0  # another loss

A diagnostic for issue 14: the demo's two seeds of U-Nets agree too much for their average to
pay. Per demo seed of an ``ensemble_gain.py --out`` folder, this trains "other" members: the
demo's recipe with ``--change`` overrides (``--set`` syntax; by default ``--encoder``, ResNet-18,
which was ``tiny``'s encoder before MobileNetV2 won on cross-validation) and the next seed,
pretrained again on the demo's HKH data with the same changes (or, with
``--reuse-pretraining``, fine-tuned from the demo's own HKH model: a change of fine-tuning
only), five folds of them; and scores four ensembles of fold models on the held-out scenes,
each with its combination and decision rule fitted on out-of-fold predictions exactly as
``glacier ensemble --all-folds`` fits them:

- the demo's own (seeds s and s+1 of ``tiny``),
- the demo's seed s + the other members' seed s+1 (as many members),
- all three seeds,
- the other members' five folds alone (is a gain the mixture's, or that model's?),

next to the demo's rival, its best single fold model by validation MCC (the better of
calibrated or not, from the demo's report), and each ensemble by the plain argmax of its
mean too (does its fitted rule beat it?). ``--encoder mobilenet_v2`` with no ``--change``
is ``tiny`` itself: the next seed with a pretraining of its own, the diversity a seed's own
HKH model adds. Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

COMBINATIONS = {
    "demo (s, s+1)": ("demo", "demo_next"),
    "demo s + other s+1": ("demo", "other"),
    "all three": ("demo", "demo_next", "other"),
    "other alone": ("other",),
}


def train_other(demo: Path, seed: int, label: str, changes: list[str], reuse_pretraining: bool) -> Path:
    """Cross-validate the demo's recipe with ``changes`` (``key=value`` overrides, as
    ``--set``) and the next seed, from a pretraining of its own with the same changes, or
    from the demo's own pretrained model (``reuse_pretraining``); the CV folder."""
    from glacier.config import load_config
    from glacier.training.cv import run_cross_validation
    from glacier.training.workflows import pretrain

    out = demo / f"runs/other_{label}"
    cv_dir = out / "cv"
    if (cv_dir / "cv_summary.json").exists():
        return cv_dir
    changes = [*changes, f"training.seed={seed + 1}"]
    if reuse_pretraining:
        pretrained_dir = demo / "runs/hkh_pretrain/best"
    else:
        hkh = load_config(demo / "runs/hkh_pretrain/config.yaml", changes).updated(
            name=f"other_{label}_pretrain", out=str(out / "pretrain")
        )
        pretrained_dir = pretrain(hkh).best_dir
    fold = load_config(demo / "runs/cv_pretrained/fold_0/config.yaml", changes)
    cfg = fold.updated(name=f"other_{label}_cv", **{"model.init_from": None})
    cv = run_cross_validation(cfg, init_from=str(pretrained_dir), out=cv_dir, print_fn=lambda *_: None)
    if not cv.finished:
        raise SystemExit(f"{cv_dir}: the cross-validation did not finish")
    return cv_dir


def unit_runs(demo: Path, seed: int, unit: str, other_cv: Path) -> list[tuple[str, int, int, Path]]:
    """(member name, seed, fold, run folder) of the five fold runs of one unit."""
    from glacier.training.ensemble import member_name

    folders = {
        "demo": (seed, lambda k: demo / "runs/cv_pretrained" / f"fold_{k}"),
        "demo_next": (seed + 1, lambda k: demo / "runs/extra_seeds/runs" / member_name(seed + 1, k)),
        "other": (seed + 200, lambda k: other_cv / f"fold_{k}"),  # a unit of its own
    }
    unit_seed, folder = folders[unit]
    return [(member_name(unit_seed, k), unit_seed, k, folder(k)) for k in range(5)]


def score(demo: Path, work: Path, runs: list[tuple[str, int, int, Path]], label: str) -> dict:
    """Fit the combination and rule of ``runs`` on OOF; held-out test MCC with and without it."""
    from ensemble_init_mix import held_out_mcc, write_ensemble  # this folder's script, beside this one

    folder = work / f"ensemble_{label}"
    decisions = write_ensemble(runs, folder)
    mcc = held_out_mcc(folder, demo, work / f"masks_{label}")
    oof = decisions["oof"] or {}
    return {
        "mcc": mcc["calibrated"],
        "mcc_uncalibrated": mcc["uncalibrated"],
        "oof_cross_fitted": oof.get("cross_fitted_mcc"),
        "chosen": oof.get("chosen"),
    }


def run_seed(root: Path, seed: int, other: str, changes: list[str], reuse_pretraining: bool) -> dict:
    demo = root / f"seed_{seed}"
    report = json.loads((demo / "report.json").read_text())
    started = time.perf_counter()
    other_cv = train_other(demo, seed, other, changes, reuse_pretraining)
    other_mcc = json.loads((other_cv / "cv_summary.json").read_text())["mean"]["mcc"]
    row = {
        "best_single": max(report["test"][k]["mcc"] for k in ("best_single", "best_single_calibrated")),
        "other_cv_mcc": other_mcc,
        "train_seconds": time.perf_counter() - started,
    }
    with tempfile.TemporaryDirectory() as work:
        for label, units in COMBINATIONS.items():
            runs = [run for unit in units for run in unit_runs(demo, seed, unit, other_cv)]
            row[label] = score(demo, Path(work), runs, "_".join(units))
            print(f"seed {seed}: {label}: {json.dumps(row[label])}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="An ensemble_gain.py --out folder.")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--encoder", default=None, help="The other members' smp encoder (default resnet18 without --change)."
    )
    parser.add_argument(
        "--change",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Another change for the other members, as --set (repeatable), e.g. "
        "--change training.loss.mcc_weight=0; with --change, --encoder applies only when given.",
    )
    parser.add_argument(
        "--reuse-pretraining",
        action="store_true",
        help="Fine-tune the other members from the demo's own HKH model (a change of fine-tuning only).",
    )
    args = parser.parse_args()
    changes = list(args.change)
    if args.encoder or not changes:
        changes.insert(0, f"model.encoder={args.encoder or 'resnet18'}")
    # A folder and run name: the last part of each key and its value (training.loss.dice_weight=0.5
    # -> dice_weight-0.5; a list's brackets and commas, which a run name may not hold, become -).
    other = "_".join(
        f"{key.rsplit('.', 1)[-1]}-{re.sub(r'[^A-Za-z0-9_.+-]+', '-', value).strip('-')}"
        for key, _, value in (c.partition("=") for c in changes)
    )
    rows = {
        int(s): run_seed(args.runs, int(s), other, changes, args.reuse_pretraining)
        for s in args.seeds.split(",")
    }
    pretraining = "the demo's own pretraining" if args.reuse_pretraining else "a pretraining of their own"
    print(f"\nother members: {', '.join(changes)} ({pretraining})")
    print("| seed | best single (val) | other members' CV MCC | " + " | ".join(COMBINATIONS) + " |")
    print("| --- " * (len(COMBINATIONS) + 3) + "|")
    for seed, row in rows.items():
        cells = [
            f"{row[c]['mcc']:.3f} ({row[c]['mcc'] - row['best_single']:+.3f}; OOF {row[c]['oof_cross_fitted']:.3f})"
            for c in COMBINATIONS
        ]
        print(
            f"| {seed} | {row['best_single']:.3f} | {row['other_cv_mcc']:.3f} | " + " | ".join(cells) + " |"
        )
    for label in COMBINATIONS:
        gains = [r[label]["mcc"] - r["best_single"] for r in rows.values()]
        over_argmax = [r[label]["mcc"] - r[label]["mcc_uncalibrated"] for r in rows.values()]
        print(
            f"{label}: gain over the best single model {sum(gains) / len(gains):+.3f} on average, "
            f"worst {min(gains):+.3f}; calibrated - uncalibrated "
            + " / ".join(f"{g:+.3f}" for g in over_argmax)
        )


if __name__ == "__main__":
    main()
