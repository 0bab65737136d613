"""Does mixing pretrained and from-scratch members make an ensemble that beats its best member?

    python benchmarks/ensemble_init_mix.py --out /tmp/mix                # demo seeds 0,1,2 (~35 min)
    python benchmarks/ensemble_init_mix.py --out /tmp/mix --seeds 0      # one seed

A diagnostic for issue 14: the demo's ensemble members (two seeds of HKH-pretrained fold
models) agree too much for their average to pay. The demo also trains the same five folds
from scratch, a different initialisation at no extra cost. Per demo seed (a demo run is
reused when ``--out`` already holds it), four ensembles of fold models, each with its
combination and decision rule fitted on out-of-fold predictions exactly as ``glacier
ensemble --all-folds`` fits them (``decide_ensemble``), predicted with flip TTA on the
held-out scenes and scored against their labels:

- the shipped seed ensemble (pretrained seeds s and s+1; the demo's own),
- pretrained seed s + the scratch folds,
- all three,
- the scratch folds alone,

next to the demo's rival, its best single pretrained fold model by validation MCC (the
better of calibrated or not). Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

COMBINATIONS = {
    "shipped (pretrained s, s+1)": ("pretrained", "pretrained_2"),
    "pretrained s + scratch": ("pretrained", "scratch"),
    "all three": ("pretrained", "pretrained_2", "scratch"),
    "scratch alone": ("scratch",),
}


def unit_runs(out: Path, seed: int, unit: str) -> list[tuple[str, int, int, Path]]:
    """(member name, seed, fold, run folder) of the five fold runs of one unit of a demo."""
    from glacier.training.ensemble import member_name

    runs = {
        "pretrained": (seed, lambda k: out / "runs/cv_pretrained" / f"fold_{k}"),
        "pretrained_2": (seed + 1, lambda k: out / "runs/extra_seeds/runs" / member_name(seed + 1, k)),
        "scratch": (seed + 100, lambda k: out / "runs/cv_scratch" / f"fold_{k}"),  # its own unit
    }
    unit_seed, folder = runs[unit]
    found = [(member_name(unit_seed, k), unit_seed, k, folder(k)) for k in range(5)]
    missing = [str(d) for *_, d in found if not (d / "best").is_dir()]
    if missing:
        raise SystemExit(f"not a default-size demo run: missing {missing}")
    return found


def write_ensemble(runs: list[tuple[str, int, int, Path]], folder: Path) -> dict:
    """The ensemble folder of fold ``runs`` (name, seed, fold, run folder), its combination
    and rule fitted on their OOF exactly as ``glacier ensemble --all-folds`` fits them; the
    decisions."""
    from glacier.artifacts import EnsembleFolder, EnsembleMember
    from glacier.artifacts.run import RunFolder
    from glacier.decisions.fitting import MemberRun, decide_ensemble

    decisions = decide_ensemble([MemberRun(*run) for run in runs], print_fn=lambda *_: None)
    members = [
        EnsembleMember(name, run_dir / "best", seed=s, fold=k, metrics=RunFolder(run_dir).model_metrics())
        for name, s, k, run_dir in runs
    ]
    EnsembleFolder.write(folder, members, extra=decisions)
    return decisions


def held_out_mcc(folder: Path, demo: Path, masks_stem: Path) -> dict[str, float]:
    """Test MCC of the ensemble ``folder`` on the demo's held-out scenes, with its fitted rule
    (``calibrated``) and by the plain argmax of its mean (``uncalibrated``)."""
    from glacier.evaluation import evaluate_folders
    from glacier.predict import predict_folder

    data = demo / "sample_data/competition"
    scores = {}
    for calibrated in (True, False):
        key = "calibrated" if calibrated else "uncalibrated"
        masks = masks_stem.with_name(f"{masks_stem.name}_{key}")
        predict_folder(folder, data / "Test", masks, tta="flip", tile_size=128, progress=False,
                       calibration=calibrated)  # fmt: skip
        scores[key] = evaluate_folders(masks, data / "Test_labels")["mcc"]
    return scores


def score_combination(out: Path, work: Path, seed: int, units) -> dict:
    """Fit the combination and rule of ``units``' members on OOF; test MCC with and without it."""
    runs = [run for unit in units for run in unit_runs(out, seed, unit)]
    folder = work / f"ensemble_{seed}_{'_'.join(units)}"
    decisions = write_ensemble(runs, folder)
    scores = held_out_mcc(folder, out, work / f"masks_{seed}_{'_'.join(units)}")
    oof = decisions["oof"] or {}
    return {**scores, "oof_cross_fitted": oof.get("cross_fitted_mcc"), "chosen": oof.get("chosen")}


def run_seed(root: Path, seed: int) -> dict:
    from glacier.demo import run_demo

    out = root / f"demo_{seed}"
    if not (out / "report.json").exists():
        started = time.perf_counter()
        run_demo(out, size="default", seed=seed, skip=("export submission",), log=lambda _: None)
        print(f"seed {seed}: demo {time.perf_counter() - started:.0f} s", flush=True)
    report = json.loads((out / "report.json").read_text())
    best = max(report["test"][k]["mcc"] for k in ("best_single", "best_single_calibrated"))
    row = {"best_single": best}
    for label, units in COMBINATIONS.items():
        row[label] = score_combination(out, root, seed, units)
        print(f"seed {seed}: {label}: {json.dumps(row[label])}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Demo runs and ensembles (reused).")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    rows = {int(s): run_seed(args.out, int(s)) for s in args.seeds.split(",")}
    print("\n| seed | best single (val) | " + " | ".join(COMBINATIONS) + " |")
    print("| --- " * (len(COMBINATIONS) + 2) + "|")
    for seed, row in rows.items():
        cells = [
            f"{row[c]['calibrated']:.3f} ({row[c]['calibrated'] - row['best_single']:+.3f})"
            for c in COMBINATIONS
        ]
        print(f"| {seed} | {row['best_single']:.3f} | " + " | ".join(cells) + " |")
    for label in COMBINATIONS:
        gain = sum(r[label]["calibrated"] - r["best_single"] for r in rows.values()) / len(rows)
        print(f"{label}: mean gain over the best single model {gain:+.3f}")


if __name__ == "__main__":
    main()
