"""CLI command: ``glacier preprocess competition|hkh SRC --out PREP`` (the prepared-dataset format)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from glacier.cli import app


class SourceKind(str, Enum):
    competition = "competition"
    hkh = "hkh"


@app.command("preprocess")
def preprocess(
    dataset: Annotated[
        SourceKind,
        typer.Argument(
            help="competition (Band1..Band5 + labels) or hkh (HKH Glacier Mapping, Landsat 7).",
        ),
    ],
    src: Annotated[
        Path,
        typer.Argument(
            help="competition: the Train/ folder (or the folder holding it); hkh: glacier_data/, "
            "its slices/ folder, or raw scenes (raster_data/ + vector_data/).",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output folder: new, empty, or a prepared dataset (replaced atomically); outside SRC.",
        ),
    ],
    bands: Annotated[
        str | None,
        typer.Option(
            "--bands",
            help="hkh only: channels by name, comma-separated: canonical (blue,swir1) or Landsat 7 "
            "(B1,B5,B6_VCID_1). Default: blue,green,red,swir1,tir.",
        ),
    ] = None,
    tile_size: Annotated[
        int, typer.Option("--tile-size", help="Tile size in pixels (clamped to the largest image side).")
    ] = 512,
    folds: Annotated[int, typer.Option("--folds", help="Number of image-level cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fold assignment.")] = 0,
    min_valid: Annotated[
        float, typer.Option("--min-valid", help="Drop tiles with a smaller labelled (non-fill) share.")
    ] = 0.0,
    min_glacier: Annotated[
        float, typer.Option("--min-glacier", help="Drop tiles with a smaller glacier (clean + debris) share.")
    ] = 0.0,
    snap_labels: Annotated[
        bool,
        typer.Option(
            "--snap-labels",
            help="competition: move label values outside 0/85/170/255 (resized labels) to the nearest "
            "class value and report how many moved; without it they are refused.",
        ),
    ] = False,
    swap_mask_channels: Annotated[
        bool,
        typer.Option(
            "--swap-mask-channels",
            help="hkh: the clean-ice and debris labels are the other way round (slice mask channels "
            "1 and 2, or the clean/debris polygon files).",
        ),
    ] = False,
    mask_check: Annotated[
        bool,
        typer.Option(
            "--mask-check/--no-mask-check",
            help="hkh: refuse labels whose debris pixels look cleaner and colder than the clean-ice ones.",
        ),
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Cut a dataset into tiles, compute band statistics and folds: the prepared-dataset format.

    Fill (every band 0, NaN or the nodata value) is left out of the statistics and ignored in
    training. Run `glacier inspect SRC` first to see what preprocess will do with your data.
    """
    from glacier.data.prepare import PrepareOptions, prepare_competition, prepare_hkh
    from glacier.errors import DataError

    options = PrepareOptions(
        tile_size=tile_size,
        num_folds=folds,
        seed=seed,
        min_valid=min_valid,
        min_glacier=min_glacier,
        snap_labels=snap_labels,
        swap_mask_channels=swap_mask_channels,
        mask_check=mask_check,
    )
    if dataset is SourceKind.hkh:
        if snap_labels:
            raise DataError("--snap-labels is for competition labels: HKH masks are 0/1 channels")
        summary = prepare_hkh(src, out, bands, options, progress=not quiet)
    elif bands is not None or swap_mask_channels or not mask_check:
        used = (
            "--bands"
            if bands is not None
            else "--swap-mask-channels"
            if swap_mask_channels
            else "--no-mask-check"
        )
        raise DataError(
            f"{used} is for hkh: competition data always has its five bands (Band1..Band5) and labels"
        )
    else:
        summary = prepare_competition(src, out, options, progress=not quiet)
    typer.echo(summary.text())
