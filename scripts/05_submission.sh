#!/usr/bin/env bash
# Phase 4: export solution.py + model.pth from the final all-data ensemble (the CV ensemble
# when there is none) and self-check it (as the platform runs it), then predict the test
# scenes if a Test/ folder is found. Why the final ensemble: docs/kaggle.md, "What is shipped".
#   bash scripts/05_submission.sh
#   MODEL=/kaggle/working/runs/ensemble bash scripts/05_submission.sh   # ship another model
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

if [ -z "${MODEL:-}" ]; then
  # ensemble.json is written last: it exists once every final member has finished.
  if [ -f "$FINAL_DIR/ensemble.json" ]; then MODEL="$FINAL_DIR"; else MODEL="$ENSEMBLE_DIR"; fi
fi
TEST_DIR="${TEST_DIR:-$(find "$KAGGLE_INPUT" -maxdepth 5 -type d -name Test -print -quit 2>/dev/null || true)}"
check_args=()
if [ -n "$TEST_DIR" ]; then
  check_args=(--check-input "$TEST_DIR")  # self-check on real test tiles, else synthetic ones
fi

log "export submission from $MODEL -> $SUBMISSION_DIR (self-checked as the platform runs it)"
glacier export-submission "$MODEL" --out "$SUBMISSION_DIR" --tta "$TTA" "${check_args[@]}"

if [ -n "$TEST_DIR" ]; then
  log "predict $TEST_DIR -> $WORK_DIR/predictions"
  glacier predict "$MODEL" "$TEST_DIR" --out "$WORK_DIR/predictions" --tta "$TTA"
fi
echo "submission files: $SUBMISSION_DIR (upload solution.py and model.pth)"
