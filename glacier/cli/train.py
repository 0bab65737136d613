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
        "--push-to-hub",
        help="Hub repo id (user/name): created now; each run pushed when it returns (with its "
        "training state if it stopped early), the result at the end; with --resume, runs missing "
        "here are first restored from it.",
    ),
]
HubRevisionOpt = Annotated[
    str | None,
    typer.Option(
        "--hub-revision",
        help="Branch for the pushed result (default main); the folds and members of a sequence "
        "get branches of their own (finetune-fold_K, ensemble-<member>).",
    ),
]
InitFromOpt = Annotated[
    str | None,
    typer.Option(
        "--init-from", help="Model folder, ensemble member or Hub id to start from (bands matched by name)."
    ),
]
AllFoldsOpt = Annotated[bool, typer.Option("--all-folds", help="Every fold of the prepared dataset.")]


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
    hub_revision: HubRevisionOpt = None,
) -> None:
    """Pretrain (e.g. on HKH); the run folder gets best/ and last/ model folders."""
    from glacier.training.workflows import pretrain as run

    cfg = config_from_options(
        config,
        set_,
        data=data,
        out=out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        fold=fold,
        seed=seed,
        resume=resume,
    )
    run(cfg, resume=resume, push_to_hub=push_to_hub, hub_revision=hub_revision)


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
    init_from: InitFromOpt = None,
    resume: ResumeOpt = None,
    push_to_hub: PushOpt = None,
    hub_revision: HubRevisionOpt = None,
) -> None:
    """Fine-tune on one validation fold (--fold K) or all of them (--all-folds, with a CV summary)."""
    from glacier.training.workflows import finetune as run

    if all_folds and fold is not None:
        raise ConfigError("--fold and --all-folds exclude each other")
    cfg = config_from_options(
        config,
        set_,
        data=data,
        out=out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        fold=fold,
        seed=seed,
        resume=resume,
    )
    run(
        cfg,
        all_folds=all_folds,
        init_from=init_from,
        resume=resume,
        push_to_hub=push_to_hub,
        hub_revision=hub_revision,
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
    init_from: InitFromOpt = None,
    resume: ResumeOpt = None,
    push_to_hub: PushOpt = None,
    hub_revision: HubRevisionOpt = None,
) -> None:
    """Train seed x fold members and write one ensemble folder (predict and export read it).

    Without --folds / --all-folds each seed trains on the config's fold (data.fold).
    """
    from glacier.training.runs import ALL_FOLDS
    from glacier.training.workflows import ensemble as run

    if all_folds and folds is not None:
        raise ConfigError("--folds and --all-folds exclude each other")
    cfg = config_from_options(
        config, set_, data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, resume=resume
    )
    run(
        cfg,
        seeds=_int_list(seeds, "--seeds"),
        folds=ALL_FOLDS if all_folds else _int_list(folds, "--folds"),
        out=out,
        init_from=init_from,
        resume=resume,
        push_to_hub=push_to_hub,
        hub_revision=hub_revision,
    )
