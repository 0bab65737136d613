"""CLI command: ``glacier inspect SRC [--json F]``, the first thing to run on a real download."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glacier.cli import app


@app.command("inspect")
def inspect(
    src: Annotated[
        Path,
        typer.Argument(
            help="A competition Train/ or Test/ folder, HKH glacier_data/ (or its slices/), or raw "
            "HKH scenes (raster_data/ + vector_data/).",
        ),
    ],
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    max_images: Annotated[
        int, typer.Option("--max-images", help="Read the pixels of at most this many images, spread evenly.")
    ] = 200,
) -> None:
    """Report what a dataset holds and what preprocess will do about it: per band dtype, nodata,
    min/max/percentiles, fill, NaN, inf and saturation; label values; image sizes and ids."""
    from glacier import atomic
    from glacier.audit import inspect_source
    from glacier.errors import DataError

    if json_path is not None and json_path.is_dir():
        raise DataError(
            f"--json {json_path}: is a folder; give a file name such as {json_path / 'inspect.json'}"
        )
    report = inspect_source(src, max_images=max_images)
    typer.echo(report.text())
    if json_path is not None:
        atomic.write_json(json_path, report.to_dict())
        typer.echo(f"report: {json_path}")
