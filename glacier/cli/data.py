"""CLI commands: ``glacier preprocess competition|hkh`` (the prepared-dataset format)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glacier.cli import app

preprocess_app = typer.Typer(
    help="Cut a dataset into tiles, compute band statistics and folds: the prepared-dataset format.",
    no_args_is_help=True,
)
app.add_typer(preprocess_app, name="preprocess")

OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Output folder (replaced atomically if it is a prepared dataset).")
]
TileSizeOpt = Annotated[
    int, typer.Option("--tile-size", help="Tile size in pixels (clamped to the largest image side).")
]
FoldsOpt = Annotated[int, typer.Option("--folds", help="Number of image-level cross-validation folds.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the fold assignment.")]
MinValidOpt = Annotated[
    float, typer.Option("--min-valid", help="Drop tiles with a smaller labelled (non-NaN) share.")
]
MinGlacierOpt = Annotated[
    float, typer.Option("--min-glacier", help="Drop tiles with a smaller glacier (clean + debris) share.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _options(tile_size: int, folds: int, seed: int, min_valid: float, min_glacier: float):
    from glacier.data.prepare import PrepareOptions

    return PrepareOptions(
        tile_size=tile_size, num_folds=folds, seed=seed, min_valid=min_valid, min_glacier=min_glacier
    )


@preprocess_app.command("competition")
def preprocess_competition(
    src: Annotated[Path, typer.Argument(help="The competition's Train/ folder (or the folder holding it).")],
    out: OutOpt,
    tile_size: TileSizeOpt = 512,
    folds: FoldsOpt = 5,
    seed: SeedOpt = 0,
    min_valid: MinValidOpt = 0.0,
    min_glacier: MinGlacierOpt = 0.0,
    quiet: QuietOpt = False,
) -> None:
    """Preprocess competition data (Band1..Band5 + labels) into a prepared dataset."""
    from glacier.data.prepare import prepare_competition

    summary = prepare_competition(
        src, out, _options(tile_size, folds, seed, min_valid, min_glacier), progress=not quiet
    )
    typer.echo(summary.text())


@preprocess_app.command("hkh")
def preprocess_hkh(
    src: Annotated[
        Path,
        typer.Argument(
            help="HKH glacier_data/, its slices/ folder, or raw scenes (raster_data/ + vector_data/)."
        ),
    ],
    out: OutOpt,
    bands: Annotated[
        str | None,
        typer.Option(
            "--bands",
            help="Channels by name, comma-separated: canonical (blue,swir1) or Landsat 7 (B1,B5,B6_VCID_1). Default: blue,green,red,swir1,tir.",
        ),
    ] = None,
    tile_size: TileSizeOpt = 512,
    folds: FoldsOpt = 5,
    seed: SeedOpt = 0,
    min_valid: MinValidOpt = 0.0,
    min_glacier: MinGlacierOpt = 0.0,
    quiet: QuietOpt = False,
) -> None:
    """Preprocess HKH Glacier Mapping data (slices or raw scenes) into a prepared dataset."""
    from glacier.data.prepare import prepare_hkh

    summary = prepare_hkh(
        src, out, bands, _options(tile_size, folds, seed, min_valid, min_glacier), progress=not quiet
    )
    typer.echo(summary.text())
