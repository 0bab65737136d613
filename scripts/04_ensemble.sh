#!/usr/bin/env bash
# Phase 3: seed x fold ensemble from the pretrained model. Rerunning it continues: finished
# members are skipped, a stopped one resumes; with HF_REPO each member is pushed to branch
# ensemble-seedS_foldK when it returns (and restored from it in a new session), the
# ensemble to main.
#   ENSEMBLE_SEEDS=42,43,44 bash scripts/04_ensemble.sh
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
end_phase "$status"
