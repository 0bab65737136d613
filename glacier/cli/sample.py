"""CLI command: sample-data (realistic synthetic competition and HKH data)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glacier.cli import app


@app.command("sample-data")
def sample_data(
    out: Annotated[Path, typer.Argument(help="Folder to create (competition/ and hkh/ inside).")],
    images: Annotated[int, typer.Option("--images", help="Competition training images.")] = 25,
    size: Annotated[int, typer.Option("--size", help="Competition image size in px (real: 512).")] = 128,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same data.")] = 0,
    test_images: Annotated[
        int, typer.Option("--test-images", help="Held-out test images (other region).")
    ] = 5,
    hkh_slices: Annotated[int, typer.Option("--hkh-slices", help="HKH .npy slices.")] = 12,
    hkh_slice_size: Annotated[
        int, typer.Option("--hkh-slice-size", help="HKH slice size in px (real: 512).")
    ] = 128,
    hkh_scenes: Annotated[int, typer.Option("--hkh-scenes", help="HKH raw scenes with label polygons.")] = 2,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Write realistic synthetic data in the real competition and HKH layouts.

    Competition: OUT/competition/Train/{Band1..Band5,labels}/imgNNN.tif, the held-out
    OUT/competition/Test/Band1..Band5 (ids continue after Train) and their truth in
    OUT/competition/Test_labels. HKH: OUT/hkh/slices (npy + slices.geojson),
    OUT/hkh/raster_data/LE07_*.tif and OUT/hkh/vector_data/{clean,debris}.geojson.
    """
    from glacier.sampledata import generate_sample_data

    summary = generate_sample_data(
        out,
        images=images,
        size=size,
        seed=seed,
        test_images=test_images,
        hkh_slices=hkh_slices,
        hkh_slice_size=hkh_slice_size,
        hkh_scenes=hkh_scenes,
        overwrite=overwrite,
    )
    typer.echo(summary.format())
