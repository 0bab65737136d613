status=0
# shellcheck disable=SC2046  # hub_args prints 0 or 4 words
train_phase "$FINETUNE_RUN" finetune --config "$FINETUNE_CONFIG" --all-folds \
  --data "$PREP_DIR/competition" --out "$FINETUNE_RUN" --init-from "$INIT_FROM" \
  --resume latest $(hub_args finetune) || status=$?
end_phase "$status"
