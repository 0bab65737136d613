#!/usr/bin/env bash
# Phase 3: seed x fold ensemble from the pretrained model, then the final models: one per
# seed on all data, as long as the CV chose, with the calibration fitted on the ensemble's
# out-of-fold predictions (what 05_submission.sh ships). Rerunning it continues: finished
# members are skipped, a stopped one resumes; with HF_REPO each member is pushed to branch
# ensemble-seedS_foldK (a final one to ensemble-seedS_all) when it returns, and restored
# from it in a new session; the CV ensemble to main, the final ensemble to branch "final".
#   ENSEMBLE_SEEDS=42,43,44 bash scripts/04_ensemble.sh
#   FINAL_MODELS=0 bash scripts/04_ensemble.sh     # the CV ensemble only
# Exit status: 0 done, 3 stopped with a state saved (rerun to continue), else failed.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

INIT_FROM="${INIT_FROM:-$PRETRAIN_RUN/best}"
log "ensemble: seeds $ENSEMBLE_SEEDS x all folds -> $ENSEMBLE_DIR"
status=0
# shellcheck disable=SC2046  # hub_args prints 0 or 4 words
train_phase "$ENSEMBLE_DIR" ensemble --config "$FINETUNE_CONFIG" --all-folds --seeds "$ENSEMBLE_SEEDS" \
  --data "$PREP_DIR/competition" --out "$ENSEMBLE_DIR" --init-from "$INIT_FROM" \
  --resume latest $(hub_args main) || status=$?

# The final models need the finished CV ensemble: its training length and calibration.
if [ "$status" -eq 0 ] && [ "$FINAL_MODELS" != 0 ]; then
  log "final models: seeds $ENSEMBLE_SEEDS on all data, length and calibration from $ENSEMBLE_DIR -> $FINAL_DIR"
  # shellcheck disable=SC2046  # hub_args prints 0 or 4 words
  train_phase "$FINAL_DIR" ensemble --config "$FINETUNE_CONFIG" --all-data --from-cv "$ENSEMBLE_DIR" \
    --seeds "$ENSEMBLE_SEEDS" --data "$PREP_DIR/competition" --out "$FINAL_DIR" \
    --init-from "$INIT_FROM" --resume latest $(hub_args final) || status=$?
fi
end_phase "$status"
