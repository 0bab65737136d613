#!/usr/bin/env python
"""Write scripts/kaggle.ipynb: the Kaggle workflow as notebook cells that call the scripts.

python scripts/make_kaggle_notebook.py          # rewrite the notebook
python scripts/make_kaggle_notebook.py --check  # exit 1 if the committed one is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NOTEBOOK = Path(__file__).with_name("kaggle.ipynb")

CELLS: list[tuple[str, str]] = [
    (
        "markdown",
        """# glacier on Kaggle (2 x T4)

The whole workflow: HKH pretraining -> 5-fold fine-tuning on the competition data -> seed
ensemble -> submission (`solution.py` + `model.pth`). Every phase is a script in `scripts/`
run with `accelerate launch` on both GPUs (`accelerate_configs/kaggle_2xT4.yaml`, fp16).

**Before running:** Settings -> Accelerator: *GPU T4 x2*; Internet: on (for `pip`); add the
competition data (`train2.zip` or `Train/`) and the HKH data (raw scenes `raster_data/` +
`vector_data/`, or `slices/`) as inputs (where to get them: `docs/kaggle.md`), and the
repository itself as a dataset, or set `REPO_URL` below to clone it. Add Kaggle secrets
`HF_TOKEN` and `HF_REPO` so that every run (each fold, each ensemble member) is pushed to
the Hugging Face Hub when it returns, and a stopped one with its training state.

**One session clock:** the set-up records when the session started; every run measures
`training.max_hours` (11 h in the `*_kaggle` presets) from then, so the last run of the
session stops cleanly, state saved and pushed, before Kaggle's 12-hour limit.

**If the session ends:** start a new one and run all cells again (or *Save & Run All*).
Every phase first restores from `HF_REPO` the runs this machine lacks, skips finished runs
and continues the stopped one from its pushed state.""",
    ),
    (
        "code",
        """# Get the code: attach the repository as a dataset (found below), or clone it.
import glob
import os

REPO_URL = ""  # the glacier repository's git URL, if it is not attached as a dataset
attached = sorted(
    os.path.dirname(os.path.dirname(p))
    for depth in ("*", "*/*", "*/*/*")
    for p in glob.glob(f"/kaggle/input/{depth}/scripts/kaggle_setup.sh")
)
REPO_DIR = os.environ.get("REPO_DIR") or (attached[0] if attached else "/kaggle/working/glacier")
if not os.path.isdir(REPO_DIR):
    assert REPO_URL, "set REPO_URL, or attach the repository as a dataset (or set REPO_DIR to it)"
    !git clone --depth 1 {REPO_URL} {REPO_DIR}
print("repository:", REPO_DIR)
%cd {REPO_DIR}""",
    ),
    (
        "code",
        """# Optional: Hub credentials from Kaggle secrets (nothing is pushed without them).
try:
    from kaggle_secrets import UserSecretsClient

    secrets = UserSecretsClient()
    os.environ["HF_TOKEN"] = secrets.get_secret("HF_TOKEN")
    os.environ["HF_REPO"] = secrets.get_secret("HF_REPO")
except Exception as exc:  # no secrets attached: runs stay in /kaggle/working
    print("Hub push disabled:", exc)""",
    ),
    (
        "markdown",
        """## Set up
Records the session start (`/kaggle/working/glacier_session.json`; a rerun in the same
session keeps it), pins the notebook's torch, torchvision and torchaudio in `/kaggle/working/pip-constraints.txt`
so no dependency can replace them, installs glacier (from a copy when the repository is a
read-only dataset, editable when it is a clone), and links the inputs under
`/kaggle/working/data` (`competition/`, `hkh/`). Paths are variables: override e.g.
`COMPETITION_SRC=/kaggle/input/x/Train` in the environment. For your own installs later, keep
the pin: `!pip install -c /kaggle/working/pip-constraints.txt PACKAGE`.""",
    ),
    ("code", "!bash scripts/kaggle_setup.sh"),
    (
        "markdown",
        """## 1. Preprocess
Tiles (float16), band statistics and image-level folds, written to the scratch disk
`/kaggle/temp/prepared` (the full HKH set does not fit the 20 GB of `/kaggle/working`:
see the disk budget in docs/kaggle.md). Scratch is lost at the session end; a new session re-creates it here
(`resume.sh` does too). Run `glacier inspect /kaggle/working/data/competition` first to see
what the data holds.""",
    ),
    ("code", "!bash scripts/01_preprocess.sh"),
    (
        "markdown",
        """## 2. Pretrain on HKH
`training.max_hours: 11` in the `*_kaggle` presets counts from the session start: a run
stops cleanly, with a state saved and pushed, 11 hours into the session.""",
    ),
    ("code", "!bash scripts/02_pretrain.sh"),
    (
        "markdown",
        "## 3. Fine-tune, 5-fold cross-validation\nThe CV table is in `runs/competition_finetune/cv_summary.md`.",
    ),
    ("code", "!bash scripts/03_finetune_cv.sh\n!cat /kaggle/working/runs/competition_finetune/cv_summary.md"),
    (
        "markdown",
        """## 4. Seed ensemble, then the final models
Seeds from `ENSEMBLE_SEEDS` (default 42,43,44) x the 5 folds; their out-of-fold predictions
choose how the seeds are combined and fit the decision rule (printed: OOF MCC before and
after). Then one final model per seed on all data, for the length the CV chose, with that
rule (`runs/final`; `FINAL_MODELS=0` skips them).""",
    ),
    ("code", "!bash scripts/04_ensemble.sh"),
    (
        "markdown",
        """## 5. Submission
Exports `solution.py` + `model.pth` (at most 300 MB) from the final ensemble (`MODEL=...`
chooses another; why: docs/kaggle.md, "What is shipped") and runs the exported script the
way the platform does, comparing its masks with `glacier predict`.""",
    ),
    ("code", "!bash scripts/05_submission.sh\n!ls -la /kaggle/working/submission"),
]


def build() -> dict:
    cells = []
    for kind, text in CELLS:
        cell = {"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    return {
        "cells": cells,
        "metadata": {
            # Kaggle's own keys: what a notebook downloaded from Kaggle carries. The inputs
            # (dataSources) are the user's own datasets, added in the notebook's settings.
            "kaggle": {
                "accelerator": "nvidiaTeslaT4",
                "dataSources": [],
                "isGpuEnabled": True,
                "isInternetEnabled": True,
                "language": "python",
                "sourceType": "notebook",
            },
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render() -> str:
    notebook = build()
    for i, cell in enumerate(notebook["cells"]):
        cell["id"] = f"cell-{i:02d}"
    return json.dumps(notebook, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not NOTEBOOK.exists() or NOTEBOOK.read_text(encoding="utf-8") != text:
            print(f"{NOTEBOOK} is out of date: run python scripts/make_kaggle_notebook.py", file=sys.stderr)
            return 1
        return 0
    NOTEBOOK.write_text(text, encoding="utf-8")
    print(f"wrote {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
