#!/usr/bin/env bash
# Phase 0: cut both datasets into the prepared format (tiles, band statistics, folds).
#   bash scripts/01_preprocess.sh
# Writes to $PREP_DIR on the scratch disk ($SCRATCH_DIR, see _common.sh), which a new
# session does not have: resume.sh runs this first, and it re-creates what is missing. Skips
# a dataset whose prepared folder already exists (delete it to redo).
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

TILE_SIZE="${TILE_SIZE:-512}"
FOLDS="${FOLDS:-5}"
mkdir -p "$PREP_DIR"

if [ -f "$PREP_DIR/hkh/manifest.json" ]; then
  echo "prepared HKH exists: $PREP_DIR/hkh"
elif run_finished "$PRETRAIN_RUN"; then
  echo "pretraining has finished ($PRETRAIN_RUN): prepared HKH not needed, not re-created"
else
  log "preprocess HKH ($DATA_DIR/hkh -> $PREP_DIR/hkh)"
  glacier preprocess hkh "$DATA_DIR/hkh" --out "$PREP_DIR/hkh" --tile-size "$TILE_SIZE" --folds "$FOLDS"
fi

if [ -f "$PREP_DIR/competition/manifest.json" ]; then
  echo "prepared competition data exists: $PREP_DIR/competition"
else
  log "preprocess competition ($DATA_DIR/competition -> $PREP_DIR/competition)"
  glacier preprocess competition "$DATA_DIR/competition" --out "$PREP_DIR/competition" \
    --tile-size "$TILE_SIZE" --folds "$FOLDS"
fi
