"""The disk budget of a whole Kaggle workflow run: which folder needs how much, on which disk.

    python benchmarks/disk_budget.py                      # the seed's full run (defaults below)
    python benchmarks/disk_budget.py --hkh-tiles 383      # the official training split only

Prepared sizes come from the prepared format; model folders and states are measured by
building the presets' model, writing it and one optimizer state (glacier/disk_budget.py).
"scratch" is the large disk lost at the session end (/kaggle/temp, ~50 GB free), "working"
is /kaggle/working (kept, 20 GB).
"""

from __future__ import annotations

import argparse

from glacier.config import load_config
from glacier.data import prepared_format as fmt
from glacier.disk_budget import format_budget, workflow_budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hkh-tiles", type=int, default=7229, help="HKH tiles of 512 px (the seed's run: 7229)"
    )
    parser.add_argument("--competition-tiles", type=int, default=25)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="ensemble seeds (x folds members)")
    parser.add_argument("--pretrain-config", default="hkh_pretrain_kaggle")
    parser.add_argument("--finetune-config", default="competition_finetune_kaggle")
    args = parser.parse_args()
    items = workflow_budget(
        load_config(args.pretrain_config),
        load_config(args.finetune_config),
        hkh_tiles=args.hkh_tiles,
        competition_tiles=args.competition_tiles,
        folds=args.folds,
        seeds=args.seeds,
    )
    float32 = fmt.prepared_bytes(args.hkh_tiles, 5, 512, version=1)
    print(
        f"presets {args.pretrain_config} + {args.finetune_config}; {args.folds} folds, {args.seeds} seeds\n"
    )
    print(format_budget(items, float32_hkh_bytes=float32))


if __name__ == "__main__":
    main()
