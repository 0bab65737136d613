"""Options shared by the training commands, with names scripts and notebooks rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glacier.config import GlacierConfig, load_config, preset_names
from glacier.errors import ConfigError


def complete_preset(incomplete: str) -> list[str]:
    """Shell completion for --config: the packaged presets starting with what was typed."""
    return [name for name in preset_names() if name.startswith(incomplete)]


ConfigOpt = Annotated[
    str,
    typer.Option(
        "--config",
        "-c",
        help=f"Packaged preset ({', '.join(preset_names())}) or a YAML file.",
        autocompletion=complete_preset,
    ),
]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Prepared-dataset folder (data.path).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (out).")]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="training.epochs")]
AUTO = "auto"
BatchSizeOpt = Annotated[
    str | None,
    typer.Option(
        "--batch-size",
        help="training.batch_size (per process), or 'auto': the largest that fits the GPU, found "
        "with a few real training steps, 10% kept free (on CPU: the preset's).",
    ),
]
LrOpt = Annotated[float | None, typer.Option("--lr", help="training.optimizer.lr")]
FoldOpt = Annotated[int | None, typer.Option("--fold", help="Validation fold (data.fold).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="training.seed")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override any key: --set section.key=value (repeatable), "
        "e.g. --set training.loss.mcc_weight=0.2",
    ),
]


def config_from_options(
    config: str,
    overrides: list[str] | None,
    *,
    data: Path | None = None,
    out: Path | None = None,
    epochs: int | None = None,
    batch_size: str | int | None = None,
    lr: float | None = None,
    fold: int | None = None,
    seed: int | None = None,
    resume: str | None = None,
) -> GlacierConfig:
    """Resolve a command's config from its --config, --set and common flags;
    ``--batch-size auto`` is searched on the GPU (``resume``: keep the runs' own)."""
    size = batch_size_option(batch_size)
    cfg = load_config(
        config,
        overrides or [],
        data=data,
        out=out,
        epochs=epochs,
        batch_size=None if size == AUTO else size,
        lr=lr,
        fold=fold,
        seed=seed,
    )
    if size != AUTO:
        return cfg
    from glacier.training.batch_size import with_auto_batch_size

    return with_auto_batch_size(cfg, resume=resume)


def batch_size_option(text: str | int | None) -> int | str | None:
    """``--batch-size``: a positive integer, ``auto`` or absent."""
    if text is None or isinstance(text, int) or text == AUTO:
        return text
    try:
        return int(text)
    except ValueError:
        raise ConfigError(
            f"--batch-size {text!r}: give a number of samples per process, or {AUTO!r}"
        ) from None
