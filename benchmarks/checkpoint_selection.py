"""Which model should a fold hand on: the epoch of its best validation MCC, or its last?

    python benchmarks/ensemble_gain.py --set checkpoints.select=best --out /tmp/gain_best
    python benchmarks/checkpoint_selection.py --runs /tmp/gain_best --seeds 0,1,2

A diagnostic for issue 14. A fold of the demo (and of the competition's 25 images) validates
on five images, and ``checkpoints.select=best`` hands on the epoch whose validation MCC was
highest on them. Per demo seed of an ``ensemble_gain.py --out`` folder trained that way, this
scores every ensemble member's ``best/`` and ``last/`` model on the held-out scenes (the
demo's TTA, uncalibrated) and prints, for each member that picked an earlier epoch, the
epoch, its lead over the last epoch on validation, both epochs' debris IoU on validation
and both models' held-out MCC; then the members' held-out MCC (mean [min, max]) either way.
Every figure is measured in this run.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any


def member_runs(demo: Path, seed: int) -> dict[str, Path]:
    """Member name -> run folder of the demo's ensemble (its CV folds and the next seed's)."""
    from ensemble_encoder_mix import unit_runs  # this folder's script, beside this one

    return {
        name: run for unit in ("demo", "demo_next") for name, *_, run in unit_runs(demo, seed, unit, None)
    }


def held_out_mcc(model: Path, demo: Path, work: Path, tta: str, tile_size: int) -> float:
    from glacier.evaluation import evaluate_folders
    from glacier.predict import predict_folder

    data = demo / "sample_data/competition"
    masks = work / f"{model.parent.name}_{model.name}"
    predict_folder(
        model, data / "Test", masks, tta=tta, tile_size=tile_size, progress=False, calibration=False
    )
    return evaluate_folders(masks, data / "Test_labels")["mcc"]


def compare(demo: Path, seed: int) -> dict[str, Any]:
    """Every member's chosen epoch, validation figures and held-out MCC of best/ and last/."""
    from glacier.artifacts.run import RunFolder

    size = json.loads((demo / "report.json").read_text(encoding="utf-8"))["size"]
    tta, tile_size = size["tta"], size["tile_size"]
    runs = member_runs(demo, seed)
    if any(RunFolder(run).config()["checkpoints"].get("select", "best") != "best" for run in runs.values()):
        raise SystemExit(
            f"{demo}: its fold models hand on their last model already (checkpoints.select=last); "
            "make the runs with ensemble_gain.py --set checkpoints.select=best"
        )
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in runs.items():
            validated = [r for r in RunFolder(run).metrics_rows() if r["val_mcc"]]
            chosen = max(validated, key=lambda r: float(r["val_mcc"]))
            last = validated[-1]
            rows[name] = {
                "epoch": int(chosen["epoch"]),
                "last_epoch": int(last["epoch"]),
                "val_lead": float(chosen["val_mcc"]) - float(last["val_mcc"]),
                "val_debris_iou": (float(chosen["iou_debris"]), float(last["iou_debris"])),
                "best": held_out_mcc(run / "best", demo, Path(tmp), tta, tile_size),
                "last": held_out_mcc(run / "last", demo, Path(tmp), tta, tile_size),
            }
    return rows


def summary(seed: int, rows: dict[str, Any]) -> list[str]:
    lines = []
    for name, r in rows.items():
        if r["epoch"] != r["last_epoch"]:
            debris = r["val_debris_iou"]
            lines.append(
                f"seed {seed} {name}: best epoch {r['epoch']} of {r['last_epoch']} (validation MCC "
                f"+{r['val_lead']:.4f} over the last; debris IoU {debris[0]:.3f} vs {debris[1]:.3f}); "
                f"held-out MCC {r['best']:.4f} (best/) vs {r['last']:.4f} (last/)"
            )
    for which in ("best", "last"):
        scores = [r[which] for r in rows.values()]
        lines.append(
            f"seed {seed} members, {which}/: held-out MCC {statistics.fmean(scores):.4f} "
            f"[{min(scores):.4f}, {max(scores):.4f}]"
        )
    return lines


def main() -> None:
    from ensemble_error_anatomy import gain_runs_parser  # this folder's script, beside this one

    args = gain_runs_parser(__doc__).parse_args()
    everything, earlier, total, worse = {}, 0, 0, 0
    for seed in (int(s) for s in args.seeds.split(",")):
        rows = compare(args.runs / f"seed_{seed}", seed)
        everything[seed] = rows
        print("\n".join(summary(seed, rows)), flush=True)
        moved = [r for r in rows.values() if r["epoch"] != r["last_epoch"]]
        earlier, total = earlier + len(moved), total + len(rows)
        worse += sum(r["best"] < r["last"] for r in moved)
    print(
        f"\n{earlier} of {total} members picked an earlier epoch than their last; "
        f"{worse} of those scored below their last model on the held-out scenes"
    )
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2))


if __name__ == "__main__":
    main()
