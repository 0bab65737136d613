status=0
# A finished run needs no prepared HKH (01_preprocess.sh does not re-create it then).
if run_finished "$PRETRAIN_RUN"; then
  echo "pretraining has finished: $PRETRAIN_RUN (delete it to train again)"
else
  log "pretrain on HKH -> $PRETRAIN_RUN"
  # shellcheck disable=SC2046  # hub_args prints 0 or 4 words
  train_phase "$PRETRAIN_RUN" pretrain --config "$PRETRAIN_CONFIG" --data "$PREP_DIR/hkh" \
    --out "$PRETRAIN_RUN" --resume latest $(hub_args pretrain) || status=$?
fi
end_phase "$status"
