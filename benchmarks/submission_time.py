"""Time the exported solution.py over a test-set-sized folder (25 tiles of 512 px), as the platform runs it.

    python benchmarks/submission_time.py                     # resnet34 U-Net: one model, a 5-member ensemble
    python benchmarks/submission_time.py --encoder resnet18 --tta flip

Each model is exported with ``glacier export-submission`` (its self-check and its projection
of the time for 25 tiles, from a few full-size tiles), then solution.py is imported in a fresh
interpreter and ``maskgeration`` is timed over the tiles, and the two are printed side by side.
The platform's HTTP 504 time-outs make this the number to watch when adding members or TTA.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from glacier.artifacts import EnsembleFolder, EnsembleMember
from glacier.config import ModelConfig
from glacier.domain import COMPETITION_BAND_FOLDERS, COMPETITION_BANDS
from glacier.models import build_model, save_model_folder
from glacier.normalization import BandStats
from glacier.submission import export_submission
from glacier.submission.selfcheck import PROJECTION_TILES, measure_solution, write_synthetic_tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--tiles", type=int, default=25)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--tta", default="none", choices=["none", "flip"])
    args = parser.parse_args()
    stats = BandStats(COMPETITION_BANDS, (0.2, 0.3, 0.25, 0.1, 280.0), (0.05, 0.08, 0.06, 0.03, 10.0))
    cfg = ModelConfig(architecture="Unet", encoder=args.encoder)

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        tiles = write_synthetic_tiles(
            base / "tiles", COMPETITION_BAND_FOLDERS, stats, sizes=[(args.size, args.size)] * args.tiles
        )
        folders = []
        for seed in range(args.members):
            torch.manual_seed(seed)
            folders.append(
                save_model_folder(build_model(cfg, COMPETITION_BANDS), base / f"m{seed}", normalization=stats)
            )
        ensemble = EnsembleFolder.write(
            base / "ensemble", [EnsembleMember(name=f"m{i}", model_dir=f) for i, f in enumerate(folders)]
        ).path
        print(
            f"{args.encoder} U-Net, {args.tiles} tiles of {args.size} px, tta {args.tta}, "
            f"CPU threads {torch.get_num_threads()}, CUDA {torch.cuda.is_available()}"
        )
        for label, model in [("one model", folders[0]), (f"{args.members}-member ensemble", ensemble)]:
            out = base / f"submission-{label.split()[0]}"
            report = export_submission(model, out, tta=args.tta)
            measured = measure_solution(out, tiles)
            projected = report[f"projected_seconds_{PROJECTION_TILES}_tiles"]
            print(
                f"{label}: model.pth {report['size_mb']} MB ({report['weights_dtype']}); export's projection "
                f"{report['seconds_per_tile']:.2f} s/tile + {report['import_seconds'] + report['load_seconds']:.1f} s "
                f"start-up; measured {args.tiles} tiles {measured:.1f} s in all"
                + (
                    f" (projection {projected:.1f} s, ratio {projected / measured:.2f})"
                    if args.tiles == PROJECTION_TILES
                    else ""
                )
            )


if __name__ == "__main__":
    main()
