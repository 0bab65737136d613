"""The one-line recipe a run logs and the demo reports: read from the config, not fixed text."""

from __future__ import annotations

from glacier.config import load_config
from glacier.training.recipe import recipe_line


def test_recipe_line_follows_the_config():
    line = recipe_line(load_config("small"))
    assert line.startswith("boundary_aware_unet resnet18 (depth 5), random init; adamw lr 0.002")
    assert "cosine to 1e-05 after 20 warm-up steps" in line
    assert "loss cross-entropy 1 + dice 0.5 + boundary 0.2" in line
    assert "30% of crops centred on debris, batches of 8 crops of 96 px" in line
    assert "no EMA" in line and line.endswith("region augmentation")  # small's short budget

    plain = recipe_line(
        load_config(
            "small",
            [
                "model.architecture=Unet",
                "training.sampler.name=uniform",
                "training.sampler.rare_crop_p=0",
                "training.ema.enabled=false",
                "training.scheduler.name=none",
                "data.augment=false",
                "model.encoder_weights=imagenet",
                "training.grad_accum_steps=2",
            ],
        )  # fmt: skip
    )
    assert plain.startswith("Unet resnet18 (depth 5), ImageNet encoder;")
    assert "boundary" not in plain  # a plain Unet has no boundary head to weigh
    assert "constant after 20 warm-up steps" in plain
    assert "uniform sampler, batches of 16 crops" in plain and "centred" not in plain
    assert "no EMA" in plain and plain.endswith("no augmentation")


def test_recipe_line_names_a_transferred_start():
    line = recipe_line(load_config("competition_finetune"))
    assert "resnet34 (depth 5), from runs/hkh_pretrain/best (head re-initialised)" in line
    assert "EMA of the weights (decay 0.999)" in line
