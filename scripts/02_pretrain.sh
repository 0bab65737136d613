#!/usr/bin/env bash
# Phase 1: pretrain on HKH with every GPU of $ACCELERATE_CONFIG. Rerunning it continues: a
# finished run is skipped, a stopped one resumes from its latest state; with HF_REPO the run
# is pushed to branch "pretrain" when it returns and restored from it in a new session.
#   bash scripts/02_pretrain.sh
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

log "pretrain on HKH -> $PRETRAIN_RUN"
# shellcheck disable=SC2046  # hub_args prints 0 or 4 words
launch pretrain --config "$PRETRAIN_CONFIG" --data "$PREP_DIR/hkh" --out "$PRETRAIN_RUN" \
  --resume latest $(hub_args pretrain)
