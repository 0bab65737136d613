#!/usr/bin/env bash
# Continue the whole workflow after a notebook session ended: ONE command (after the set-up).
#   HF_REPO=me/glacier bash scripts/resume.sh
# Every phase continues by itself: it first restores from HF_REPO the runs this machine
# lacks, skips finished ones and resumes the stopped one from its pushed state. This script
# only runs them in order, as the notebook's cells do (04 ends with the final all-data
# models, which 05 ships).
# Exit status 3: a phase stopped again with a state saved (training.max_hours): run this
# script again in the next session.
set -euo pipefail
HERE="$(dirname "${BASH_SOURCE[0]}")"

bash "$HERE/01_preprocess.sh"
bash "$HERE/02_pretrain.sh"
bash "$HERE/03_finetune_cv.sh"
bash "$HERE/04_ensemble.sh"
bash "$HERE/05_submission.sh"
