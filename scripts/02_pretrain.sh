#!/usr/bin/env bash
# Phase 1: pretrain on HKH with every GPU of $ACCELERATE_CONFIG; resumes if a state exists.
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
  # shellcheck disable=SC2046  # resume_args prints 0 or 2 words
  train_phase "$PRETRAIN_RUN" pretrain --config "$PRETRAIN_CONFIG" --data "$PREP_DIR/hkh" \
    --out "$PRETRAIN_RUN" $(resume_args "$PRETRAIN_RUN") || status=$?
  stop_on_failure "$status"
fi
push_phase "$PRETRAIN_RUN" pretrain --include-states
end_phase "$status"
