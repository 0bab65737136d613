"""What can an ensemble fix? The demo's errors on its held-out scenes, split by the true surface.

    python benchmarks/ensemble_gain.py --test-images 20 --out /tmp/gain          # the demo runs
    python benchmarks/ensemble_error_anatomy.py --runs /tmp/gain --seeds 0,1,2

A diagnostic for issue 14. The sample data's labels are drawn as a digitiser draws them, a
pixel or three off the true class boundaries (glacier/sampledata/labels.py), so a perfect
model of the surface does not reach MCC 1. The generator regenerates the surface of every
held-out scene (``held_out_images``); with it, per demo seed of an ``ensemble_gain.py --out``
folder, this predicts every ensemble member (uncalibrated, the demo's TTA) and reports:

- the ceiling: the true surface scored against the labels (error rate, MCC);
- the members' error rate and MCC (mean [min, max]);
- the pixels *every* member gets wrong (no average of these members can fix them) and the
  share of those where the label departs from the surface (no model can fix them);
- the pixels some member gets right (a pixel-wise oracle over the members: the most any way
  of combining them could reach) and how many of the pixels where members disagree the
  shipped ensemble decides correctly;
- the demo's calibrated fold ensemble and best single model, as it scored them.

Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def read_masks(folder: Path, role: str) -> np.ndarray:
    """(N, H, W) class indices of ``folder``'s masks in tile-id order (as ``glacier evaluate``
    reads them); ``role`` names the folder in errors."""
    from glacier.data.raster import read_single_band
    from glacier.domain import encoded_to_index
    from glacier.evaluation import mask_files

    return np.stack(
        [
            encoded_to_index(read_single_band(path)[0], source=str(path))
            for path in mask_files(folder, role).values()
        ]
    )


def mcc(pred: np.ndarray, labels: np.ndarray) -> float:
    from glacier.domain import IGNORE_INDEX, NUM_CLASSES
    from glacier.metrics import confusion_matrix, matthews_corrcoef

    return matthews_corrcoef(confusion_matrix(pred, labels, NUM_CLASSES, IGNORE_INDEX))


def member_masks(demo: Path, tta: str, tile_size: int) -> dict[str, np.ndarray]:
    """Every ensemble member's uncalibrated masks of the demo's Test scenes."""
    from glacier.artifacts import EnsembleFolder
    from glacier.predict import predict_folder

    test = demo / "sample_data/competition/Test"
    masks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in EnsembleFolder(demo / "ensemble").members().items():
            out = Path(tmp) / name
            predict_folder(
                folder.path, test, out, tta=tta, tile_size=tile_size, progress=False, calibration=False
            )
            masks[name] = read_masks(out, f"member {name}'s prediction")
    return masks


def anatomy(demo: Path) -> dict[str, Any]:
    """The figures of the module docstring for one demo run folder."""
    from glacier.sampledata.generate import held_out_images

    report = json.loads((demo / "report.json").read_text(encoding="utf-8"))
    size, seed = report["size"], report["seed"]
    truth_dir = demo / "sample_data/competition/Test_labels"
    labels = read_masks(truth_dir, "truth")
    images = held_out_images(size["test_images"], size=size["image_size"], seed=seed)
    if len(images) != len(labels) or any(
        not np.array_equal(i.labels, lab) for i, lab in zip(images, labels, strict=False)
    ):
        raise SystemExit(
            f"{truth_dir}: not the labels sample-data writes for seed {seed}; is {demo} a demo run?"
        )
    surface = np.stack([i.surface for i in images])
    members = member_masks(demo, size["tta"], size["tile_size"])
    stack = np.stack(list(members.values()))
    wrong = stack != labels
    every_wrong, departs = wrong.all(0), surface != labels
    disagree = wrong.any(0) & ~every_wrong
    ensemble = read_masks(demo / "predictions/ensemble", "ensemble prediction")
    rates = wrong.reshape(len(members), -1).mean(1)
    scores = [mcc(m, labels) for m in stack]
    return {
        "seed": seed,
        "ceiling_error": float(departs.mean()),
        "ceiling_mcc": mcc(surface, labels),
        "member_error": [float(rates.mean()), float(rates.min()), float(rates.max())],
        "member_mcc": [float(np.mean(scores)), float(min(scores)), float(max(scores))],
        "every_member_wrong": float(every_wrong.mean()),
        "every_wrong_label_departs": float((every_wrong & departs).sum() / max(every_wrong.sum(), 1)),
        "shared_share_of_member_error": float(every_wrong.sum() / wrong.sum(axis=(1, 2, 3)).mean()),
        "disagree": float(disagree.mean()),
        "ensemble_right_where_members_disagree": float((ensemble == labels)[disagree].mean()),
        "ensemble_error": float((ensemble != labels).mean()),
        "ensemble_mcc": report["test"]["ensemble"]["mcc"],
        "best_single_mcc": report["test"]["best_single"]["mcc"],
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| seed | ceiling: true surface vs labels (error, MCC) | members: error, MCC (mean [min, max]) "
        "| wrong in every member (of it, label departs) | share of a member's errors every member makes "
        "| members disagree | ensemble right where they disagree | ensemble error, MCC | best single MCC |",
        "| --- " * 9 + "|",
    ]
    for r in rows:
        e, m = r["member_error"], r["member_mcc"]
        lines.append(
            f"| {r['seed']} | {r['ceiling_error']:.2%}, {r['ceiling_mcc']:.3f} "
            f"| {e[0]:.2%} [{e[1]:.2%}, {e[2]:.2%}], {m[0]:.3f} [{m[1]:.3f}, {m[2]:.3f}] "
            f"| {r['every_member_wrong']:.2%} ({r['every_wrong_label_departs']:.0%}) "
            f"| {r['shared_share_of_member_error']:.0%} | {r['disagree']:.2%} "
            f"| {r['ensemble_right_where_members_disagree']:.0%} "
            f"| {r['ensemble_error']:.2%}, {r['ensemble_mcc']:.3f} | {r['best_single_mcc']:.3f} |"
        )
    return "\n".join(lines)


def gain_runs_parser(doc: str) -> argparse.ArgumentParser:
    """The options of a diagnostic that reads an ``ensemble_gain.py --out`` folder."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="An ensemble_gain.py --out folder.")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    return parser


def main() -> None:
    args = gain_runs_parser(__doc__).parse_args()
    rows = [anatomy(args.runs / f"seed_{s}") for s in args.seeds.split(",")]
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
