"""CLI commands: ``glacier pretrain``, ``glacier finetune``, ``glacier ensemble``.

All run as plain ``glacier <command>`` on one device and under
``accelerate launch -m glacier <command>`` on several.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glacier.cli import app
from glacier.cli.common import (
    BatchSizeOpt,
    ConfigOpt,
    DataOpt,
    EpochsOpt,
    FoldOpt,
    LrOpt,
    OutOpt,
    SeedOpt,
    SetOpt,
    config_from_options,
)
from glacier.errors import ConfigError

ResumeOpt = Annotated[
    str | None,
    typer.Option(
        "--resume",
        help="Continue a run: 'latest' (newest state in the run folder) or a states/state_NNNNNN folder.",
    ),
]
PushOpt = Annotated[
    str | None,
    typer.Option(
        "--push-to-hub", help="Hub repo id (user/name): created now, the best model pushed at the end."
    ),
]
InitFromOpt = Annotated[
    str | None,
    typer.Option(
        "--init-from", help="Model folder, ensemble member or Hub id to start from (bands matched by name)."
    ),
]
AllFoldsOpt = Annotated[bool, typer.Option("--all-folds", help="Every fold of the prepared dataset.")]
AllDataOpt = Annotated[
    bool,
    typer.Option(
        "--all-data",
        help="Final model(s) on every image, as long as the --from-cv cross-validation chose, with its calibration.",
    ),
]
FromCvOpt = Annotated[
    Path | None,
    typer.Option(
        "--from-cv",
        help="With --all-data: the finetune --all-folds run (or, for ensemble, the ensemble --all-folds folder).",
    ),
]


def _check_all_data(all_data: bool, from_cv: Path | None, others: dict[str, bool]) -> Path | None:
    """--from-cv goes with --all-data, which excludes the fold options."""
    if not all_data:
        if from_cv is not None:
            raise ConfigError("--from-cv goes with --all-data")
        return None
    if from_cv is None:
        raise ConfigError(
            "--all-data needs --from-cv CV_RUN: the cross-validation that chooses the training length "
            "and the calibration (finetune --all-folds, or ensemble --all-folds for an ensemble)"
        )
    clashing = [name for name, given in others.items() if given]
    if clashing:
        raise ConfigError(f"--all-data and {' / '.join(clashing)} exclude each other")
    return from_cv


def _int_list(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: write comma-separated integers, e.g. 42,123,456") from None
    if not values:
        raise ConfigError(f"{option}: give at least one value")
    return values


@app.command()
def pretrain(
    config: ConfigOpt = "hkh_pretrain",
    data: DataOpt = None,
    out: OutOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    lr: LrOpt = None,
    fold: FoldOpt = None,
    seed: SeedOpt = None,
    set_: SetOpt = None,
    resume: ResumeOpt = None,
    push_to_hub: PushOpt = None,
) -> None:
    """Pretrain (e.g. on HKH); the run folder gets best/ and last/ model folders."""
    from glacier.training.workflows import pretrain as run

    cfg = config_from_options(
        config, set_, data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, fold=fold, seed=seed
    )
    run(cfg, resume=resume, push_to_hub=push_to_hub)


@app.command()
def finetune(
    config: ConfigOpt = "competition_finetune",
    data: DataOpt = None,
    out: OutOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    lr: LrOpt = None,
    fold: FoldOpt = None,
    seed: SeedOpt = None,
    set_: SetOpt = None,
    all_folds: AllFoldsOpt = False,
    all_data: AllDataOpt = False,
    from_cv: FromCvOpt = None,
    init_from: InitFromOpt = None,
    resume: ResumeOpt = None,
    push_to_hub: PushOpt = None,
) -> None:
    """Fine-tune on one validation fold (--fold K), all of them (--all-folds, with a CV summary,
    out-of-fold predictions and a calibration), or on all data (--all-data --from-cv CV_RUN)."""
    from glacier.training.workflows import finetune as run

    if all_folds and fold is not None:
        raise ConfigError("--fold and --all-folds exclude each other")
    source = _check_all_data(all_data, from_cv, {"--all-folds": all_folds, "--fold": fold is not None})
    cfg = config_from_options(
        config, set_, data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, fold=fold, seed=seed
    )
    run(
        cfg,
        all_folds=all_folds,
        all_data_from=source,
        keep_length=epochs is not None,
        init_from=init_from,
        resume=resume,
        push_to_hub=push_to_hub,
    )


@app.command()
def ensemble(
    out: Annotated[Path, typer.Option("--out", "-o", help="Ensemble folder to write.")],
    seeds: Annotated[
        str, typer.Option("--seeds", help="Comma-separated seeds, one member per seed and fold.")
    ],
    config: ConfigOpt = "competition_finetune",
    data: DataOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    lr: LrOpt = None,
    set_: SetOpt = None,
    folds: Annotated[
        str | None, typer.Option("--folds", help="Comma-separated validation folds, e.g. 0,1,2.")
    ] = None,
    all_folds: AllFoldsOpt = False,
    all_data: AllDataOpt = False,
    from_cv: FromCvOpt = None,
    init_from: InitFromOpt = None,
    resume: ResumeOpt = None,
    push_to_hub: PushOpt = None,
) -> None:
    """Train seed x fold members and write one ensemble folder (predict and export read it).

    Without --folds / --all-folds each seed trains on the config's fold (data.fold). With
    --all-folds the members' out-of-fold predictions choose how they are combined and
    calibrated; --all-data --from-cv ENS then trains one final member per seed on every image.
    """
    from glacier.training.runs import ALL_FOLDS
    from glacier.training.workflows import ensemble as run

    if all_folds and folds is not None:
        raise ConfigError("--folds and --all-folds exclude each other")
    source = _check_all_data(all_data, from_cv, {"--all-folds": all_folds, "--folds": folds is not None})
    cfg = config_from_options(config, set_, data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr)
    run(
        cfg,
        seeds=_int_list(seeds, "--seeds"),
        folds=ALL_FOLDS if all_folds else _int_list(folds, "--folds"),
        out=out,
        all_data_from=source,
        keep_length=epochs is not None,
        init_from=init_from,
        resume=resume,
        push_to_hub=push_to_hub,
    )
