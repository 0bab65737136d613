#!/usr/bin/env bash
# Phase 2: 5-fold fine-tuning from the pretrained model. Rerunning it continues: finished
# folds are skipped, a stopped one resumes; with HF_REPO each fold is pushed to branch
# finetune-fold_K when it returns (and restored from it in a new session), the best fold
# to branch "finetune".
#   bash scripts/03_finetune_cv.sh
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

INIT_FROM="${INIT_FROM:-$PRETRAIN_RUN/best}"
log "fine-tune all folds from $INIT_FROM -> $FINETUNE_RUN"
# shellcheck disable=SC2046  # hub_args prints 0 or 4 words
launch finetune --config "$FINETUNE_CONFIG" --all-folds --data "$PREP_DIR/competition" \
  --out "$FINETUNE_RUN" --init-from "$INIT_FROM" --resume latest $(hub_args finetune)
