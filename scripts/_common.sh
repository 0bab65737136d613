#!/usr/bin/env bash
# Shared settings of the Kaggle / multi-GPU workflow scripts (sourced, not run).
# Every path is a variable with a default; override any of them from the environment:
#   WORK_DIR=/tmp/work bash scripts/02_pretrain.sh
# shellcheck disable=SC2034  # the phase scripts use these

REPO_DIR="${REPO_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
KAGGLE_INPUT="${KAGGLE_INPUT:-/kaggle/input}"
WORK_DIR="${WORK_DIR:-/kaggle/working}"
DATA_DIR="${DATA_DIR:-$WORK_DIR/data}"
PREP_DIR="${PREP_DIR:-$WORK_DIR/prepared}"
RUNS_DIR="${RUNS_DIR:-$WORK_DIR/runs}"
# pip constraints pinning the notebook's torch stack (written by kaggle_setup.sh); pass it to
# any later install too: pip install -c "$PIP_CONSTRAINTS" PACKAGE
PIP_CONSTRAINTS="${PIP_CONSTRAINTS:-$WORK_DIR/pip-constraints.txt}"
ACCELERATE_CONFIG="${ACCELERATE_CONFIG:-$REPO_DIR/accelerate_configs/kaggle_2xT4.yaml}"
PRETRAIN_CONFIG="${PRETRAIN_CONFIG:-hkh_pretrain_kaggle}"
FINETUNE_CONFIG="${FINETUNE_CONFIG:-competition_finetune_kaggle}"
ENSEMBLE_SEEDS="${ENSEMBLE_SEEDS:-42,43,44}"
TTA="${TTA:-flip}"
# Extra arguments for every training command, e.g. EXTRA_ARGS="--epochs 2 --set data.num_workers=0"
EXTRA_ARGS="${EXTRA_ARGS:-}"
# Hub repo (user/name) that every run is pushed to as it returns and restored from in a new
# session; needs HF_TOKEN. Empty: runs stay in WORK_DIR.
HF_REPO="${HF_REPO:-}"
# The notebook session's start, recorded by kaggle_setup.sh (glacier/session.py): every run's
# training.max_hours counts from it, and no run goes past the session's limit minus the margin.
# Exported: the training processes read it. Without the file nothing changes.
export GLACIER_SESSION_FILE="${GLACIER_SESSION_FILE:-$WORK_DIR/glacier_session.json}"
SESSION_LIMIT_HOURS="${SESSION_LIMIT_HOURS:-12}"
SESSION_MARGIN_MINUTES="${SESSION_MARGIN_MINUTES:-30}"

PRETRAIN_RUN="$RUNS_DIR/hkh_pretrain"
FINETUNE_RUN="$RUNS_DIR/competition_finetune"
ENSEMBLE_DIR="$RUNS_DIR/ensemble"
SUBMISSION_DIR="$WORK_DIR/submission"

cd "$REPO_DIR" || exit 1

log() { printf '\n== %s\n' "$*"; }

# glacier under accelerate launch (all GPUs of ACCELERATE_CONFIG); plain glacier otherwise.
launch() {
  # shellcheck disable=SC2086  # EXTRA_ARGS is split on purpose
  accelerate launch --config_file "$ACCELERATE_CONFIG" -m glacier "$@" $EXTRA_ARGS
}

# Record the session start, or keep it when this session already recorded one. Standard
# library only, so it runs before glacier is installed.
record_session_start() {
  PYTHONPATH="$REPO_DIR${PYTHONPATH:+:$PYTHONPATH}" python -m glacier.session record "$GLACIER_SESSION_FILE" \
    --limit-hours "$SESSION_LIMIT_HOURS" --margin-minutes "$SESSION_MARGIN_MINUTES"
}

# The Hub options of a training phase whose result goes to branch $1: with them each run is
# pushed when it returns (a stopped one with its state) and restored in a new session.
hub_args() {
  if [ -z "$HF_REPO" ]; then
    echo "HF_REPO not set: runs stay in $WORK_DIR (set HF_REPO and HF_TOKEN to keep them past this session)" >&2
    return 0
  fi
  echo "--push-to-hub $HF_REPO --hub-revision $1"
}
