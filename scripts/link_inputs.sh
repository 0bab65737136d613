#!/usr/bin/env bash
# Link the input data under $DATA_DIR: competition/ (a Train/ folder, or train2.zip unzipped)
# and hkh/ (raw scenes raster_data/ + vector_data/, or LILA slices/), found under
# $KAGGLE_INPUT or given as COMPETITION_SRC / HKH_SRC. Part of kaggle_setup.sh.
#   bash scripts/link_inputs.sh
# What is not found is reported on stderr, not an error: the phases that need it fail then.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

mkdir -p "$DATA_DIR"

# ---- competition data: a Train/ folder, or train2.zip, anywhere under KAGGLE_INPUT
# Nothing found (or KAGGLE_INPUT missing, or an unreadable folder) is not an error here.
find_first() { find "$KAGGLE_INPUT" -maxdepth 5 "$@" -print -quit 2>/dev/null || true; }
if [ -z "${COMPETITION_SRC:-}" ]; then
  train_dir="$(find_first -type d -name Train)"
  train_zip="$(find_first -type f -name 'train2.zip')"
  if [ -n "$train_dir" ]; then
    COMPETITION_SRC="$train_dir"
  elif [ -n "$train_zip" ]; then
    log "unzipping $train_zip -> $DATA_DIR"
    unzip -q -o "$train_zip" -d "$DATA_DIR"
    COMPETITION_SRC="$(find "$DATA_DIR" -maxdepth 3 -type d -name Train -print -quit)"
  fi
fi
if [ -n "${COMPETITION_SRC:-}" ]; then
  ln -sfn "$COMPETITION_SRC" "$DATA_DIR/competition"
  echo "competition data: $COMPETITION_SRC -> $DATA_DIR/competition"
else
  echo "competition data: no Train/ or train2.zip under $KAGGLE_INPUT (add the dataset, or set COMPETITION_SRC)" >&2
fi

# ---- HKH: raw scenes (raster_data/ + vector_data/) or LILA slices/ under KAGGLE_INPUT
if [ -z "${HKH_SRC:-}" ]; then
  raster="$(find_first -type d -name raster_data)"
  slices="$(find_first -type d -name slices)"
  if [ -n "$raster" ]; then
    HKH_SRC="$(dirname "$raster")"
  elif [ -n "$slices" ]; then
    HKH_SRC="$slices"
  fi
fi
if [ -n "${HKH_SRC:-}" ]; then
  ln -sfn "$HKH_SRC" "$DATA_DIR/hkh"
  echo "HKH data: $HKH_SRC -> $DATA_DIR/hkh"
else
  echo "HKH data: no raster_data/ or slices/ under $KAGGLE_INPUT (pretraining needs it; or set HKH_SRC)" >&2
fi
