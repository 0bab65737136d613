#!/usr/bin/env bash
# Phase 3: seed x fold ensemble from the pretrained model; resumes (finished members skipped).
#   ENSEMBLE_SEEDS=42,43,44 bash scripts/04_ensemble.sh
# Exit status: 0 done, 3 stopped with a state saved (rerun to continue), else failed.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

INIT_FROM="${INIT_FROM:-$PRETRAIN_RUN/best}"
log "ensemble: seeds $ENSEMBLE_SEEDS x all folds -> $ENSEMBLE_DIR"
status=0
# shellcheck disable=SC2046
train_phase "$ENSEMBLE_DIR" ensemble --config "$FINETUNE_CONFIG" --all-folds --seeds "$ENSEMBLE_SEEDS" \
  --data "$PREP_DIR/competition" --out "$ENSEMBLE_DIR" --init-from "$INIT_FROM" \
  $(resume_args "$ENSEMBLE_DIR/runs") || status=$?
stop_on_failure "$status"
if [ "$status" -eq 0 ]; then  # the ensemble folder exists once every member has finished
  push_phase "$ENSEMBLE_DIR" main
fi
end_phase "$status"
