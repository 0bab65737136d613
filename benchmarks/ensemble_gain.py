"""Does the ensemble earn its cost? The demo's comparison, repeated over demo seeds.

    python benchmarks/ensemble_gain.py                        # default demo size, seeds 0,1,2
    python benchmarks/ensemble_gain.py --size smoke --seeds 0 --out /tmp/gain
    python benchmarks/ensemble_gain.py --set checkpoints.select=best      # another recipe

Each seed runs the demo (glacier/demo.py: new sample data, pretraining, 5-fold CV, a second
seed of fold models, the ensemble's combination and calibration fitted on out-of-fold
predictions) without the scratch CV and the export, then scores on the held-out scenes:
the calibrated ensemble (what the workflow ships), the same ensemble uncalibrated (argmax
of the mean probability), the best single model by validation MCC (the demo's rival), with
and without its own calibration, and, as the strictest rival, the member that is best on the
test scenes themselves (an oracle no workflow could pick); and the all-data final ensemble
(one model per seed the ensemble's fit kept, trained on every image, its rule carried over:
the same kind of prediction, one model per seed, that the rule was fitted on). The goal (issue 14): the
calibrated ensemble beats its best member by at least 0.01 MCC on average and in every seed,
and beats the uncalibrated ensemble. Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SKIPPED_STAGES = ("fine-tune CV (scratch)", "export submission")
GOAL_GAIN = 0.01
COLUMNS = (
    ("ensemble", "ensemble calibrated"),
    ("ensemble_uncalibrated", "ensemble uncalibrated"),
    ("all_data", "all-data ensemble calibrated"),
    ("best_single", "best single (val)"),
    ("best_single_calibrated", "best single (val) calibrated"),
    ("oracle_member", "best member on test (oracle)"),
)


def oracle_member(out: Path, tta: str, tile_size: int) -> dict[str, Any]:
    """The ensemble member (uncalibrated) with the highest MCC on the test scenes, and every
    member's MCC there (their spread is the noise a best-member comparison carries)."""
    from glacier.artifacts import EnsembleFolder
    from glacier.evaluation import evaluate_folders
    from glacier.predict import predict_folder

    test, truth = out / "sample_data/competition/Test", out / "sample_data/competition/Test_labels"
    best: dict[str, Any] = {"mcc": float("-inf")}
    scores: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in EnsembleFolder(out / "ensemble").members().items():
            masks = Path(tmp) / name
            predict_folder(
                folder.path, test, masks, tta=tta, tile_size=tile_size, progress=False, calibration=False
            )
            result = evaluate_folders(masks, truth)
            scores[name] = result["mcc"]
            if result["mcc"] > best["mcc"]:
                best = {"name": f"member {name}", "mcc": result["mcc"], "iou": result["iou"]}
    return {**best, "members": scores}


def gain_standard_error(out: Path, key: str, rival: str) -> float:
    """Standard error of the pooled test-MCC difference between the demo's ``predictions/key``
    and ``predictions/rival``, bootstrapped over the held-out scenes: the noise of judging on
    these scenes (not the training seed's, which the seeds show)."""
    import numpy as np
    from ensemble_error_anatomy import read_masks  # this folder's script, beside this one

    from glacier.decisions.select import mcc_difference_se, tile_confusions

    truth = read_masks(out / "sample_data/competition/Test_labels", "truth")

    def confusions(name: str) -> np.ndarray:
        return tile_confusions(read_masks(out / "predictions" / name, name), truth)

    return mcc_difference_se(confusions(key), confusions(rival), np.arange(len(truth)))


def run_seed(
    seed: int,
    size: str,
    out: Path,
    test_images: int | None,
    extra_seeds: int | None = None,
    changes: tuple[str, ...] = (),
    finetune_epochs: int | None = None,
) -> dict[str, Any]:
    from glacier.demo import SIZES, run_demo

    started = time.perf_counter()
    report = run_demo(
        out,
        size=size,
        seed=seed,
        skip=SKIPPED_STAGES,
        log=lambda line: print(f"[seed {seed}] {line}"),
        test_images=test_images,
        extra_seeds=extra_seeds,
        config_overrides=changes,
        finetune_epochs=finetune_epochs,
    )
    test = dict(report.test)
    test["oracle_member"] = oracle_member(out, SIZES[size].tta, SIZES[size].tile_size)
    rival = max(("best_single", "best_single_calibrated"), key=lambda key: test[key]["mcc"])
    test["gain_standard_error"] = gain_standard_error(out, "ensemble", rival)
    ensemble = report.decisions.get("ensemble", {})
    oof = ensemble.get("oof") or {}
    return {
        "seed": seed,
        "test": test,
        "oof_before": oof.get("mcc"),
        "oof_after": oof.get("calibrated_mcc"),
        "oof_cross_fitted": oof.get("cross_fitted_mcc"),
        "chosen": oof.get("chosen"),
        "rule": oof.get("rule"),
        "table": oof.get("table"),
        "seconds": time.perf_counter() - started,
    }


def gains(row: dict[str, Any]) -> dict[str, float]:
    test = row["test"]
    ensemble = test["ensemble"]["mcc"]
    best_member = max(test["best_single"]["mcc"], test["best_single_calibrated"]["mcc"])
    return {
        "vs_best_member": ensemble - best_member,
        "vs_oracle": ensemble - test["oracle_member"]["mcc"],
        "vs_uncalibrated": ensemble - test["ensemble_uncalibrated"]["mcc"],
        "all_data_vs_best_member": test["all_data"]["mcc"] - best_member,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    head = " | ".join(title for _, title in COLUMNS)
    lines = [
        "Test MCC on the held-out scenes (debris IoU in brackets):",
        "",
        f"| seed | {head} | gain vs best member | gain vs oracle | gain vs uncalibrated | all-data gain vs best member | OOF MCC before -> after (cross-fitted) | chosen |",
        "|" + " --- |" * (len(COLUMNS) + 7),
    ]
    for row in rows:
        cells = [
            f"{row['test'][k]['mcc']:.3f} ({row['test'][k]['iou'].get('debris') or 0:.2f})"
            for k, _ in COLUMNS
        ]
        g = gains(row)
        lines.append(
            f"| {row['seed']} | "
            + " | ".join(cells)
            + f" | {g['vs_best_member']:+.3f}{_se(row)} | {g['vs_oracle']:+.3f} | "
            f"{g['vs_uncalibrated']:+.3f} | {g['all_data_vs_best_member']:+.3f} | "
            f"{_num(row['oof_before'])} -> {_num(row['oof_after'])} "
            f"({_num(row['oof_cross_fitted'])}) | {row['chosen']} |"
        )
    means = {
        k: statistics.fmean(gains(r)[k] for r in rows)
        for k in ("vs_best_member", "vs_oracle", "vs_uncalibrated", "all_data_vs_best_member")
    }
    worst = min(gains(r)["vs_best_member"] for r in rows)
    spread = "; ".join(_member_spread(r) for r in rows)
    met = (
        means["vs_best_member"] >= GOAL_GAIN
        and worst >= GOAL_GAIN
        and min(gains(r)["vs_uncalibrated"] for r in rows) > 0
    )
    lines += [
        "",
        f"Mean gain of the calibrated ensemble: {means['vs_best_member']:+.3f} over the best member (val-chosen, "
        f"calibrated or not: the better of the two), {means['vs_oracle']:+.3f} over the oracle member, "
        f"{means['vs_uncalibrated']:+.3f} over the uncalibrated ensemble; worst seed {worst:+.3f} over the best member.",
        f"Goal (>= {GOAL_GAIN} over the best member on average and in every seed, and above the uncalibrated "
        f"ensemble in every seed): {'met' if met else 'NOT met'}.",
        f"The all-data final ensemble (one model per seed the fit kept, its rule carried over): "
        f"{means['all_data_vs_best_member']:+.3f} over the best member on average, worst seed "
        f"{min(gains(r)['all_data_vs_best_member'] for r in rows):+.3f}.",
        f"Members on the test scenes (uncalibrated, mean [min, max]): {spread}.",
        "(+/- after a gain over the best member: its standard error bootstrapped over the held-out "
        "scenes, 500 draws.)",
    ]
    return "\n".join(lines)


def _member_spread(row: dict[str, Any]) -> str:
    scores = list(row["test"]["oracle_member"].get("members", {}).values())
    if not scores:
        return f"seed {row['seed']} -"
    return f"seed {row['seed']} {statistics.fmean(scores):.3f} [{min(scores):.3f}, {max(scores):.3f}]"


def _se(row: dict[str, Any]) -> str:
    error = row["test"].get("gain_standard_error")
    return "" if error is None else f" +/- {error:.3f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="demo seeds, comma-separated")
    parser.add_argument("--size", default="default", help="demo size (glacier.demo.SIZES)")
    parser.add_argument(
        "--out", type=Path, default=None, help="keep every demo run here (default: a temporary folder)"
    )
    parser.add_argument(
        "--test-images",
        type=int,
        default=None,
        help="held-out scenes to score on (default: the size's own; its first scenes are the same)",
    )
    parser.add_argument(
        "--extra-seeds",
        type=int,
        default=None,
        help="seeds of fold models beside the CV's in the ensemble (default: the size's own, 1)",
    )
    parser.add_argument(
        "--finetune-epochs",
        type=int,
        default=None,
        help="fine-tuning epochs of every model (default: the size's own; 12 for default)",
    )
    parser.add_argument(
        "--set",
        dest="changes",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a change to the demo's recipe in every training stage (repeatable), e.g. "
        "--set checkpoints.select=best",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="ensemble_gain_"))
    rows = []
    try:
        for seed in (int(s) for s in args.seeds.split(",")):
            out = root / f"seed_{seed}"
            rows.append(
                run_seed(
                    seed,
                    args.size,
                    out,
                    args.test_images,
                    extra_seeds=args.extra_seeds,
                    changes=tuple(args.changes),
                    finetune_epochs=args.finetune_epochs,
                )
            )
            print(markdown(rows), flush=True)
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    changes = f" with {' '.join(args.changes)}" if args.changes else ""
    if args.finetune_epochs is not None:
        changes += f" at {args.finetune_epochs} fine-tuning epochs"
    print(f"\n{args.size} demo{changes}, seeds {args.seeds}; {sum(r['seconds'] for r in rows):.0f} s in all")


if __name__ == "__main__":
    main()
