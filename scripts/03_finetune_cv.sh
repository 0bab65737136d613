#!/usr/bin/env bash
# Phase 2: 5-fold fine-tuning from the pretrained model. Rerunning it continues: finished
# folds are skipped, a stopped one resumes; with HF_REPO each fold is pushed to branch
# finetune-fold_K when it returns (and restored from it in a new session), the best fold
# to branch "finetune".
#   bash scripts/03_finetune_cv.sh
# Exit status: 0 done, 3 stopped with a state saved (rerun to continue), else failed.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

INIT_FROM="${INIT_FROM:-$PRETRAIN_RUN/best}"
log "fine-tune all folds from $INIT_FROM -> $FINETUNE_RUN"
status=0
# shellcheck disable=SC2046  # hub_args prints 0 or 4 words
train_phase "$FINETUNE_RUN" finetune --config "$FINETUNE_CONFIG" --all-folds \
  --data "$PREP_DIR/competition" --out "$FINETUNE_RUN" --init-from "$INIT_FROM" \
  --resume latest $(hub_args finetune) || status=$?
end_phase "$status"
