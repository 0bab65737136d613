status=0
# shellcheck disable=SC2046  # hub_args prints 0 or 4 words
train_phase "$ENSEMBLE_DIR" ensemble --config "$FINETUNE_CONFIG" --all-folds --seeds "$ENSEMBLE_SEEDS" \
  --data "$PREP_DIR/competition" --out "$ENSEMBLE_DIR" --init-from "$INIT_FROM" \
  --resume latest $(hub_args main) || status=$?
end_phase "$status"
