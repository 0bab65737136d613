"""CLI commands: predict, export-submission."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from glacier.cli import app
from glacier.cli.choices import Device, SubmissionTta, Tta

TtaOpt = Annotated[
    Tta, typer.Option("--tta", help="Test-time augmentation: none, flip (3 copies) or d4 (8 copies).")
]


NoCalibrationOpt = Annotated[
    bool,
    typer.Option(
        "--no-calibration",
        help="Ignore the model's decision rule (fitted on out-of-fold predictions, or the "
        "sampler-prior correction of a model trained without them): argmax of the mean probability.",
    ),
]


def _split_names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


@app.command("predict")
def predict(
    model: Annotated[str, typer.Argument(help="Model folder, ensemble folder or Hub id (user/name).")],
    input_dir: Annotated[Path, typer.Argument(help="Folder holding Band1..Band5 (one GeoTIFF per scene).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the masks (input file names).")],
    tta: TtaOpt = Tta.none,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Windows per forward pass.")] = 4,
    device: Annotated[
        Device, typer.Option("--device", help="Where to run; auto takes CUDA when there is one.")
    ] = Device.auto,
    tile_size: Annotated[
        int, typer.Option("--tile-size", min=16, help="Window size for larger scenes (px).")
    ] = 512,
    overlap: Annotated[
        float, typer.Option("--overlap", help="Window overlap, a fraction of the tile.")
    ] = 0.25,
    probabilities: Annotated[
        bool,
        typer.Option(
            "--probabilities", help="Also write OUT/probabilities/<name> (uint8 p x 255 per class)."
        ),
    ] = False,
    overlays: Annotated[bool, typer.Option("--overlays", help="Also write OUT/overlays/<stem>.png.")] = False,
    soup: Annotated[
        bool,
        typer.Option(
            "--soup", help="Average the ensemble members' weights into one model (same architecture)."
        ),
    ] = False,
    members: Annotated[
        str | None, typer.Option("--members", help="Ensemble members to use, comma-separated.")
    ] = None,
    no_calibration: NoCalibrationOpt = False,
) -> None:
    """Predict masks (uint8 0/85/170/255, the inputs' georeferencing) for every scene of INPUT_DIR."""
    from glacier.predict import predict_folder

    summary = predict_folder(
        model,
        input_dir,
        out,
        tta=tta.value,
        batch_size=batch_size,
        device=device.value,
        tile_size=tile_size,
        overlap=overlap,
        probabilities=probabilities,
        overlays=overlays,
        soup=soup,
        members=_split_names(members),
        calibration=not no_calibration,
    )
    typer.echo(
        f"wrote {summary['scenes']} masks to {out} ({summary['members']} member(s)"
        f"{', soup' if summary['soup'] else ''}, tta {summary['tta']}, {summary['device']}, "
        f"{summary['seconds_per_scene']:.3f} s/scene)\ncalibration: {summary['calibration']}"
    )


@app.command("export-submission")
def export_submission(
    model: Annotated[str, typer.Argument(help="Model folder, ensemble folder or Hub id (user/name).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for solution.py and model.pth.")],
    tta: Annotated[
        SubmissionTta, typer.Option("--tta", help="Heavier TTA than flip timed out on the platform.")
    ] = SubmissionTta.none,
    members: Annotated[
        str | None, typer.Option("--members", help="Ensemble members to ship, comma-separated.")
    ] = None,
    fp16: Annotated[
        bool | None,
        typer.Option(
            "--fp16/--fp32", help="Weight precision in model.pth (default: fp32 unless over 300 MB)."
        ),
    ] = None,
    check_input: Annotated[
        Path | None,
        typer.Option("--check-input", help="Band folders to self-check on (default: synthetic tiles)."),
    ] = None,
    no_calibration: NoCalibrationOpt = False,
    timing: Annotated[
        bool,
        typer.Option(
            "--timing/--no-timing",
            help="Time full 512 px tiles as the platform calls maskgeration and project its 25-tile run "
            "(--no-timing: a quicker export without the projection).",
        ),
    ] = True,
) -> None:
    """Write solution.py + model.pth for the competition platform and verify them in a fresh interpreter."""
    from glacier.submission import export_submission as export
    from glacier.submission.export import shipped_models_words

    report = export(
        model,
        out,
        tta=tta.value,
        members=_split_names(members),
        half=fp16,
        check_input=check_input,
        calibration=not no_calibration,
        timing=timing,
    )
    time_line = (
        f"time: {report['seconds_per_tile']:.3f} s/tile here, about {report['projected_seconds_25_tiles']:.1f} s "
        f"for 25 tiles (including {report['import_seconds'] + report['load_seconds']:.1f} s start-up)"
        if timing
        else "time: not measured (--no-timing)"
    )
    typer.echo(
        f"wrote {report['solution']} and {report['model']} ({report['size_mb']} MB, "
        f"{shipped_models_words(report)}, {report['weights_dtype']}, tta {report['tta']})\n"
        f"calibration: {report['calibration']}\n"
        f"self-check on {report['check_tiles']} {report['check_input']} tile(s): "
        f"{report['differing_pixels']} of {report['pixels']} pixels differ from glacier predict "
        f"({report['mismatch_fraction']:.1e})\n{time_line}"
    )
    if "fp16_vs_fp32_mismatch_fraction" in report:
        typer.echo(
            f"fp16 weights change {report['fp16_vs_fp32_mismatch_fraction']:.1e} of pixels against fp32"
        )
