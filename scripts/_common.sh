#!/usr/bin/env bash
# Shared settings of the Kaggle / multi-GPU workflow scripts (sourced, not run).
# Every path is a variable with a default; override any of them from the environment:
#   WORK_DIR=/tmp/work bash scripts/02_pretrain.sh
# shellcheck disable=SC2034  # the phase scripts use these

REPO_DIR="${REPO_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
KAGGLE_INPUT="${KAGGLE_INPUT:-/kaggle/input}"
WORK_DIR="${WORK_DIR:-/kaggle/working}"
# The large disk that is lost at the session end: prepared data and HKH extracts live there,
# and 01_preprocess.sh re-creates what is missing in each session. Only models, states and
# results go to WORK_DIR (/kaggle/working keeps 20 GB). See docs/kaggle.md, "Disk budget".
if [ -z "${SCRATCH_DIR:-}" ]; then
  if [ -d /kaggle ]; then SCRATCH_DIR=/kaggle/temp; else SCRATCH_DIR="$WORK_DIR/scratch"; fi
fi
DATA_DIR="${DATA_DIR:-$WORK_DIR/data}"
PREP_DIR="${PREP_DIR:-$SCRATCH_DIR/prepared}"
RUNS_DIR="${RUNS_DIR:-$WORK_DIR/runs}"
# pip constraints pinning the notebook's torch stack (written by kaggle_setup.sh); pass it to
# any later install too: pip install -c "$PIP_CONSTRAINTS" PACKAGE
PIP_CONSTRAINTS="${PIP_CONSTRAINTS:-$WORK_DIR/pip-constraints.txt}"
ACCELERATE_CONFIG="${ACCELERATE_CONFIG:-$REPO_DIR/accelerate_configs/kaggle_2xT4.yaml}"
PRETRAIN_CONFIG="${PRETRAIN_CONFIG:-hkh_pretrain_kaggle}"
FINETUNE_CONFIG="${FINETUNE_CONFIG:-competition_finetune_kaggle}"
ENSEMBLE_SEEDS="${ENSEMBLE_SEEDS:-42,43,44}"
# 04_ensemble.sh trains, after the CV ensemble, one final model per seed on all data (0: not)
FINAL_MODELS="${FINAL_MODELS:-1}"
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
FINAL_DIR="$RUNS_DIR/final"
SUBMISSION_DIR="$WORK_DIR/submission"

cd "$REPO_DIR" || exit 1

log() { printf '\n== %s\n' "$*"; }

# glacier under accelerate launch (all GPUs of ACCELERATE_CONFIG); plain glacier otherwise.
launch() {
  # shellcheck disable=SC2086  # EXTRA_ARGS is split on purpose
  accelerate launch --config_file "$ACCELERATE_CONFIG" -m glacier "$@" $EXTRA_ARGS
}

# glacier's exit status for a training run stopped on purpose (SIGTERM, training.max_hours)
# with a state saved; 0 is done, anything else failed (docs/troubleshooting.md).
STOPPED=3

# Run a training command (after the run folder $1) under launch; return 0 (done), STOPPED or
# the failure's status. accelerate launch reports any non-zero status of its processes as 1,
# so a stop is read from what glacier wrote: a result.json newer than the launch that says
# the run did not finish.
train_phase() {
  local run="$1" stamp status=0
  shift
  stamp="$(mktemp)"
  launch "$@" || status=$?
  if [ "$status" -ne 0 ] && stopped_since "$run" "$stamp"; then
    status=$STOPPED
  fi
  rm -f "$stamp"
  return "$status"
}

# Whether a run under $1 wrote, after file $2, a result.json of a run that did not finish.
stopped_since() {
  local stopped
  stopped="$(find "$1" -name result.json -newer "$2" -exec \
    grep -L -E '"stopped_reason": "(completed|early_stopping)"' {} + 2>/dev/null || true)"
  [ -n "$stopped" ]
}

# The end of a phase script: a stopped run ends the whole workflow with STOPPED.
end_phase() {
  if [ "$1" -eq "$STOPPED" ]; then
    echo "stopped with a state saved (exit status $STOPPED): rerun this phase, or scripts/resume.sh, to continue" >&2
  fi
  exit "$1"
}

# Whether the run folder $1 holds a finished run (its result.json says completed or early stop).
run_finished() {
  python -c 'import sys; from glacier.artifacts.run import RunFolder; sys.exit(RunFolder(sys.argv[1]).finished_result() is None)' "$1" 2>/dev/null
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
