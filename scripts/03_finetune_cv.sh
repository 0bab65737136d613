#!/usr/bin/env bash
# Phase 2: 5-fold fine-tuning from the pretrained model; resumes (finished folds are skipped).
#   bash scripts/03_finetune_cv.sh
# Exit status: 0 done, 3 stopped with a state saved (rerun to continue), else failed.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

INIT_FROM="${INIT_FROM:-$PRETRAIN_RUN/best}"
log "fine-tune all folds from $INIT_FROM -> $FINETUNE_RUN"
status=0
# shellcheck disable=SC2046
train_phase "$FINETUNE_RUN" finetune --config "$FINETUNE_CONFIG" --all-folds \
  --data "$PREP_DIR/competition" --out "$FINETUNE_RUN" --init-from "$INIT_FROM" \
  $(resume_args "$FINETUNE_RUN") || status=$?
stop_on_failure "$status"
for fold_dir in "$FINETUNE_RUN"/fold_*; do
  push_phase "$fold_dir" "finetune-$(basename "$fold_dir")" --include-states
done
end_phase "$status"
