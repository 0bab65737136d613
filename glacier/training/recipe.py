"""What a config trains with, said in one line: for a run's log and the demo's report.

    recipe_line(cfg)
    # 'boundary_aware_unet resnet18 (depth 3, decoder 32/16/8), random init; adamw lr 0.003
    #  wd 0.0001, cosine to 1e-05 after 2 warm-up steps; loss focal(gamma 2) 1 + dice 1 + ...'

Only what the config states: the run's length in optimizer steps depends on its data and
is said by ``resolve_length``'s line.
"""

from __future__ import annotations

from glacier.config import GlacierConfig
from glacier.models.factory import BOUNDARY_AWARE_UNET


def recipe_line(cfg: GlacierConfig) -> str:
    """The network, its start, optimizer and schedule, loss, sampler, averaging and
    augmentation of ``cfg``, in that order."""
    return "; ".join(
        [_network(cfg), _optimization(cfg), _loss(cfg), _sampling(cfg), _averaging(cfg), _augmentation(cfg)]
    )


def _network(cfg: GlacierConfig) -> str:
    model = cfg.model
    shape = f"depth {model.encoder_depth}"
    if model.decoder_channels:
        shape += ", decoder " + "/".join(map(str, model.decoder_channels))
    start = "ImageNet encoder" if model.encoder_weights == "imagenet" else "random init"
    if model.init_from:
        start = f"from {model.init_from}" + (" (head re-initialised)" if model.reinit_head else "")
    return f"{model.architecture} {model.encoder} ({shape}), {start}"


def _optimization(cfg: GlacierConfig) -> str:
    opt, sched = cfg.training.optimizer, cfg.training.scheduler
    line = f"{opt.name} lr {opt.lr:g} wd {opt.weight_decay:g}"
    warmup = (
        f"{sched.warmup_steps} warm-up steps"
        if sched.warmup_steps
        else f"{sched.warmup_epochs} warm-up epochs"
        if sched.warmup_epochs
        else "no warm-up"
    )
    if sched.name == "cosine":
        return f"{line}, cosine to {sched.min_lr:g} after {warmup}"
    if sched.name == "plateau":
        return f"{line}, x{sched.factor:g} on a {sched.patience}-validation plateau after {warmup}"
    return f"{line}, constant after {warmup}"


def _loss(cfg: GlacierConfig) -> str:
    loss = cfg.training.loss
    focal = "cross-entropy" if loss.focal_gamma == 0 else f"focal(gamma {loss.focal_gamma:g})"
    terms = [
        (focal, loss.focal_weight),
        ("dice", loss.dice_weight),
        ("mcc", loss.mcc_weight),
        ("boundary", loss.boundary_weight if cfg.model.architecture == BOUNDARY_AWARE_UNET else 0.0),
    ]
    text = " + ".join(f"{name} {weight:g}" for name, weight in terms if weight > 0) or "no loss terms"
    return "loss " + text + (" (class-weighted)" if loss.class_weights else "")


def _sampling(cfg: GlacierConfig) -> str:
    sampler = cfg.training.sampler
    if sampler.name == "balanced":
        targets = ", ".join(f"{k} {v:.0%}" for k, v in sampler.target_shares.items() if v > 0)
        line = (
            f"balanced sampler ({targets}; <= {sampler.max_weight:g}x uniform, "
            f"{sampler.uniform_mix:.0%} uniform)"
        )
    else:
        line = "uniform sampler"
    if sampler.rare_crop_p > 0:
        line += f", {sampler.rare_crop_p:.0%} of crops centred on {'/'.join(sampler.rare_crop_classes)}"
    batch = cfg.training.batch_size * cfg.training.grad_accum_steps
    return f"{line}, batches of {batch} crops of {cfg.data.crop_size} px"


def _averaging(cfg: GlacierConfig) -> str:
    ema = cfg.training.ema
    return f"EMA of the weights (decay {ema.decay:g})" if ema.enabled else "no EMA"


def _augmentation(cfg: GlacierConfig) -> str:
    data = cfg.data
    if not data.augment:
        return "no augmentation"
    backend = "" if data.augment_backend == "numpy" else f" ({data.augment_backend})"
    return f"{data.augment_level} augmentation{backend}"
