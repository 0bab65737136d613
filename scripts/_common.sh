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
TTA="${TTA:-flip}"
# Extra arguments for every training command, e.g. EXTRA_ARGS="--epochs 2 --set data.num_workers=0"
EXTRA_ARGS="${EXTRA_ARGS:-}"
# Hub repo (user/name) each phase is pushed to when it ends; needs HF_TOKEN. Empty: no push.
HF_REPO="${HF_REPO:-}"

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

# After a training phase: a failure ends the script with its status; done or stopped goes on
# (a stopped run is pushed too, so that the next session can restore and continue it).
stop_on_failure() {
  if [ "$1" -ne 0 ] && [ "$1" -ne "$STOPPED" ]; then
    exit "$1"
  fi
}

# The end of a phase script: a stopped run ends the whole workflow with STOPPED.
end_phase() {
  if [ "$1" -eq "$STOPPED" ]; then
    echo "stopped with a state saved (exit status $STOPPED): rerun this phase, or scripts/resume.sh, to continue" >&2
  fi
  exit "$1"
}

# "--resume latest" once a run folder holds a saved state: rerunning a phase continues it.
resume_args() {
  if [ -d "$1" ] && find "$1" -maxdepth 3 -path '*/states/state_*' -print -quit | grep -q .; then
    echo "--resume latest"
  fi
}

# Whether the run folder $1 holds a finished run (its result.json says completed or early stop).
run_finished() {
  python -c 'import sys; from glacier.artifacts.run import RunFolder; sys.exit(RunFolder(sys.argv[1]).finished_result() is None)' "$1" 2>/dev/null
}

# Push a finished phase's folder to the Hub (branch = phase name) when HF_REPO is set.
push_phase() {
  local folder="$1" branch="$2"
  if [ -z "$HF_REPO" ]; then
    echo "HF_REPO not set: $folder stays local (set HF_REPO and HF_TOKEN to keep it past this session)"
    return 0
  fi
  if [ -z "${HF_TOKEN:-}" ]; then
    echo "HF_REPO=$HF_REPO but HF_TOKEN is not set: cannot push $folder" >&2
    return 1
  fi
  glacier push "$folder" "$HF_REPO" --revision "$branch" "${@:3}"
}
