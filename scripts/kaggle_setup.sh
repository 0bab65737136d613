#!/usr/bin/env bash
# Record the session start, install glacier into the notebook's Python, then link the input
# data under $DATA_DIR (scripts/link_inputs.sh).
#   bash scripts/kaggle_setup.sh
# Environment (all optional): KAGGLE_INPUT, WORK_DIR, DATA_DIR, COMPETITION_SRC, HKH_SRC,
# PIP_CONSTRAINTS, SESSION_LIMIT_HOURS, SESSION_MARGIN_MINUTES.
# The session start ($GLACIER_SESSION_FILE) comes first, before the install takes minutes:
# every run's training.max_hours counts from it. A rerun in the same session keeps it.
# The notebook's torch stack is kept: its installed versions are pinned in $PIP_CONSTRAINTS
# first, so no dependency can replace them (pip keeps them or stops with an error), and
# checked again after the install. A read-only repository (a Kaggle dataset) is installed
# from a writable copy; a writable one (a clone) is installed editable.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

# pip writes glacier.egg-info next to pyproject.toml: a read-only tree is copied first.
install_glacier() {
  if [ -w "$REPO_DIR" ]; then
    log "installing glacier from $REPO_DIR (editable)"
    pip install -q -c "$PIP_CONSTRAINTS" -e "$REPO_DIR"
    return
  fi
  copy="$(mktemp -d)"
  trap 'rm -rf "$copy"' EXIT
  log "$REPO_DIR is read-only: installing glacier from a copy in $copy"
  tar -C "$REPO_DIR" --exclude=.git -cf - . | tar -C "$copy" -xf -
  chmod -R u+w "$copy"  # the copy keeps the dataset's read-only modes
  pip install -q -c "$PIP_CONSTRAINTS" "$copy"
}

record_session_start
python "$REPO_DIR/scripts/pin_preinstalled.py" "$PIP_CONSTRAINTS"
install_glacier
python "$REPO_DIR/scripts/pin_preinstalled.py" --check "$PIP_CONSTRAINTS"
glacier --help > /dev/null
echo "glacier installed; the pinned torch stack is unchanged"

bash "$REPO_DIR/scripts/link_inputs.sh"
