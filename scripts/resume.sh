#!/usr/bin/env bash
# Continue the whole workflow after a notebook session ended: ONE command.
#   HF_REPO=me/glacier bash scripts/resume.sh
# In a fresh session it first restores each phase pushed to the Hub (branches pretrain,
# finetune-fold_K) into $RUNS_DIR, then reruns every phase: finished work is skipped and an
# interrupted run continues from its latest saved state. Exit status 3: a phase stopped again
# with a state saved (training.max_hours): run this script again in the next session.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
HERE="$(dirname "${BASH_SOURCE[0]}")"

# Rebuild a run folder (best/, states/, metrics.csv) from a run pushed with its states.
restore_run() {
  local branch="$1" run="$2" pulled
  if [ -d "$run" ] || [ -z "$HF_REPO" ]; then
    return 0
  fi
  pulled="$WORK_DIR/.pulled/$branch"
  if ! glacier pull "$HF_REPO" --out "$pulled" --revision "$branch"; then
    echo "nothing to restore from $HF_REPO@$branch"
    return 0
  fi
  mkdir -p "$run/best"
  cp "$pulled/model.safetensors" "$pulled/config.json" "$run/best/"
  [ -f "$pulled/boundary_head.safetensors" ] && cp "$pulled/boundary_head.safetensors" "$run/best/"
  [ -d "$pulled/states" ] && cp -r "$pulled/states" "$run/"
  [ -f "$pulled/metrics.csv" ] && cp "$pulled/metrics.csv" "$run/"
  echo "restored $HF_REPO@$branch -> $run"
}

restore_run pretrain "$PRETRAIN_RUN"
for k in 0 1 2 3 4; do
  restore_run "finetune-fold_$k" "$FINETUNE_RUN/fold_$k"
done

bash "$HERE/01_preprocess.sh"
bash "$HERE/02_pretrain.sh"
bash "$HERE/03_finetune_cv.sh"
bash "$HERE/04_ensemble.sh"
bash "$HERE/05_submission.sh"
