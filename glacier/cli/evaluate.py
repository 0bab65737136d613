"""CLI command: ``glacier evaluate PRED TRUTH`` scores predicted masks against the truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glacier.cli import app


@app.command("evaluate")
def evaluate(
    pred: Annotated[Path, typer.Argument(help="Folder of predicted masks (GeoTIFF, 0/85/170/255).")],
    truth: Annotated[Path, typer.Argument(help="Folder of true masks, paired with PRED by tile id.")],
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Write the metrics (mcc, iou, f1, confusion...) as JSON here."),
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option("--plots", help="Write confusion.png and one overlay_<id>.png per image here."),
    ] = None,
) -> None:
    """Score predicted masks: MCC over all pixels (the competition metric), per-class IoU and F1.

    Example: glacier evaluate predictions/ sample/competition/Test_labels --json scores.json --plots plots/
    """
    from glacier.evaluation import evaluate_folders, format_report

    result = evaluate_folders(pred, truth, plots_dir=plots, json_path=json_path)
    typer.echo(format_report(result))
