#!/usr/bin/env bash
# Phase 1: pretrain on HKH with every GPU of $ACCELERATE_CONFIG. Rerunning it continues: a
# finished run is skipped, a stopped one resumes from its latest state; with HF_REPO the run
# is pushed to branch "pretrain" when it returns and restored from it in a new session.
#   bash scripts/02_pretrain.sh
# Exit status: 0 done, 3 stopped with a state saved (rerun to continue), else failed.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

status=0
# A finished run needs no prepared HKH (01_preprocess.sh does not re-create it then).
if run_finished "$PRETRAIN_RUN"; then
  echo "pretraining has finished: $PRETRAIN_RUN (delete it to train again)"
else
  log "pretrain on HKH -> $PRETRAIN_RUN"
  # shellcheck disable=SC2046  # hub_args prints 0 or 4 words
  train_phase "$PRETRAIN_RUN" pretrain --config "$PRETRAIN_CONFIG" --data "$PREP_DIR/hkh" \
    --out "$PRETRAIN_RUN" --resume latest $(hub_args pretrain) || status=$?
fi
end_phase "$status"
