"""CLI commands: ``glacier pretrain``, ``glacier finetune``, ``glacier ensemble``.

All run as plain ``glacier <command>`` on one device and under
``accelerate launch -m glacier <command>`` on several. A run stopped with a state saved
(SIGTERM, training.max_hours) exits with status 3 (``EXIT_STOPPED``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glacier.cli import EXIT_STOPPED, app
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


def _int_list(values: list[str] | None, option: str) -> list[int] | None:
    """Integers from a repeated option, each value possibly comma-separated: ``--seed 42 --seed 43``
    or ``--seed 42,43``; None when the option was not given."""
    if not values:
        return None
    text = ",".join(values)
    try:
        numbers = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: write integers, e.g. {option} 42,43 or {option} 42 {option} 43"
        ) from None
    if not numbers:
        raise ConfigError(f"{option}: give at least one value")
    return numbers


def _exit_if_stopped(result) -> None:
    """A run that stopped before its last epoch (SIGTERM, SIGINT, training.max_hours) with a
    state saved exits with EXIT_STOPPED, so that scripts tell it from success and failure."""
    if result.finished:
        return
    from glacier.training.runs import is_main_process

    runs = getattr(result, "folds", None) or getattr(result, "members", None) or {"run": result}
    reason = next((r.stopped_reason for r in reversed(list(runs.values())) if not r.finished), "stopped")
    if is_main_process():
        typer.secho(
            f"stopped ({reason}) with a state saved: run the same command with --resume latest to continue "
            f"(exit status {EXIT_STOPPED})",
            err=True,
        )
    raise typer.Exit(EXIT_STOPPED)


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
    _exit_if_stopped(run(cfg, resume=resume, push_to_hub=push_to_hub, hub_revision=hub_revision))


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
    hub_revision: HubRevisionOpt = None,
) -> None:
    """Fine-tune on one validation fold (--fold K), all of them (--all-folds, with a CV summary,
    out-of-fold predictions and a calibration), or on all data (--all-data --from-cv CV_RUN)."""
    from glacier.training.workflows import finetune as run

    if all_folds and fold is not None:
        raise ConfigError("--fold and --all-folds exclude each other")
    source = _check_all_data(all_data, from_cv, {"--all-folds": all_folds, "--fold": fold is not None})
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
    _exit_if_stopped(
        run(
            cfg,
            all_folds=all_folds,
            all_data_from=source,
            keep_length=epochs is not None,
            init_from=init_from,
            resume=resume,
            push_to_hub=push_to_hub,
            hub_revision=hub_revision,
        )
    )


@app.command()
def ensemble(
    out: Annotated[Path, typer.Option("--out", "-o", help="Ensemble folder to write.")],
    seeds: Annotated[
        list[str],
        typer.Option(
            "--seed",
            "--seeds",
            help="Member seeds: repeat --seed or give a comma-separated list (42,43,44).",
        ),
    ],
    config: ConfigOpt = "competition_finetune",
    data: DataOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    lr: LrOpt = None,
    set_: SetOpt = None,
    folds: Annotated[
        list[str] | None,
        typer.Option(
            "--fold",
            "--folds",
            help="Validation folds: repeat --fold or give a comma-separated list (0,1,2).",
        ),
    ] = None,
    all_folds: AllFoldsOpt = False,
    all_data: AllDataOpt = False,
    from_cv: FromCvOpt = None,
    init_from: InitFromOpt = None,
    resume: ResumeOpt = None,
    push_to_hub: PushOpt = None,
    hub_revision: HubRevisionOpt = None,
) -> None:
    """Train seed x fold members and write one ensemble folder (predict and export read it).

    One member per seed and fold; without --fold or --all-folds, on the config's data.fold.
    Like every training command it takes --seed and --fold (repeat them, or give lists). With
    --all-folds the members' out-of-fold predictions choose how they are combined and
    calibrated; --all-data --from-cv ENS then trains one final member per seed on every image.
    """
    from glacier.training.runs import ALL_FOLDS
    from glacier.training.workflows import ensemble as run

    if all_folds and folds:
        raise ConfigError("--fold and --all-folds exclude each other")
    source = _check_all_data(all_data, from_cv, {"--all-folds": all_folds, "--fold": bool(folds)})
    cfg = config_from_options(
        config, set_, data=data, out=out, epochs=epochs, batch_size=batch_size, lr=lr, resume=resume
    )
    result = run(
        cfg,
        seeds=_int_list(seeds, "--seed"),
        folds=ALL_FOLDS if all_folds else _int_list(folds, "--fold"),
        out=out,
        all_data_from=source,
        keep_length=epochs is not None,
        init_from=init_from,
        resume=resume,
        push_to_hub=push_to_hub,
        hub_revision=hub_revision,
    )
    _exit_if_stopped(result)
