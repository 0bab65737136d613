"""Options shared by the training commands, with names scripts and notebooks rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glacier.config import GlacierConfig, load_config, preset_names


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
BatchSizeOpt = Annotated[int | None, typer.Option("--batch-size", help="training.batch_size (per process).")]
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
    batch_size: int | None = None,
    lr: float | None = None,
    fold: int | None = None,
    seed: int | None = None,
) -> GlacierConfig:
    """Resolve a command's config from its --config, --set and common flags."""
    return load_config(
        config,
        overrides or [],
        data=data,
        out=out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        fold=fold,
        seed=seed,
    )
