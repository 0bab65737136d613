"""The recipe inside a real ``fit``: a step budget decides the epochs, the run says what its
sampler draws, and the EMA of the weights is what is validated and saved."""

from __future__ import annotations

import csv

import numpy as np
import torch
import yaml
from safetensors.torch import load_file
from training_data import prepared_competition

from glacier.data.prepared import PreparedDataset, TileDataset
from glacier.losses import CombinedLoss
from glacier.models import load_model_folder
from glacier.training.step import pad_to_stride


def _validation_loss(model, prep, loss: dict) -> float:
    """Mean per-tile loss of ``model`` on fold 0's tiles, as ``validate`` computes it."""
    prepared = PreparedDataset.open(prep)
    _, val_idx = prepared.train_val_indices(0)
    dataset = TileDataset(prepared, val_idx, stats=prepared.stats)
    loss_fn = CombinedLoss(**loss)
    model.eval()
    losses = []
    with torch.no_grad():
        for i in range(len(dataset)):
            sample = dataset[i]
            image, mask = pad_to_stride(sample["image"][None], sample["mask"][None], model.stride)
            logits, edges = model(image, with_boundary=True)
            losses.append(float(loss_fn(logits, mask, edges)[0]))
    return float(np.mean(losses))


def test_step_budget_and_the_ema_is_validated_and_saved(tmp_path, cli, capsys):
    prep = prepared_competition(tmp_path)
    run = tmp_path / "run"
    code = cli(
        "finetune", "--config", "tiny", "--data", prep, "--out", run, "--fold", "0",
        "--set", "training.epochs=null", "--set", "training.steps=6",
        "--set", "training.sampler.samples_per_epoch=8", "--set", "training.batch_size=4",
        "--set", "training.loss.boundary_ramp=none", "--set", "training.sampler.rare_crop_p=0.5",
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "length: 6 optimizer steps = 3 epochs x 2 steps, from the step budget" in out
    assert "effective sample size" in out and "largest tile weight" in out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["training"]["epochs"] == 3 and saved["training"]["steps"] == 6
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert len(rows) == 3
    drawn = [
        sum(float(row[f"drawn_{c}"]) for c in ("background", "glacier", "debris", "lake")) for row in rows
    ]
    np.testing.assert_allclose(drawn, 1.0, atol=1e-6)

    # The last state holds the raw weights and the EMA; last/ is the EMA.
    state = sorted((run / "states").glob("state_*"))[-1]  # the final one (numbered by batch)
    raw = load_file(str(state / "model.safetensors"))
    ema = torch.load(state / "custom_checkpoint_0.pkl", weights_only=False)
    last, meta = load_model_folder(run / "last")
    saved_weights = last.state_dict()
    assert ema["updates"] == 6
    for key, value in saved_weights.items():
        torch.testing.assert_close(value, ema["module"][key])
    differs = [
        k
        for k in saved_weights
        if saved_weights[k].is_floating_point() and not torch.equal(saved_weights[k], raw[k])
    ]
    assert differs, "the saved model equals the raw weights: the EMA was not saved"

    # Validation scored the EMA: its recorded loss is the EMA model's, not the raw model's.
    loss_cfg = saved["training"]["loss"]
    recorded = meta.metrics["loss"]
    assert abs(_validation_loss(last, prep, loss_cfg) - recorded) < 1e-4
    raw_model, _ = load_model_folder(run / "last")
    raw_model.load_state_dict(raw)
    assert abs(_validation_loss(raw_model, prep, loss_cfg) - recorded) > 1e-4
