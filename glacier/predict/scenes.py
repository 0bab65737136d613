"""``glacier predict``: a model or ensemble over every scene of a competition-layout folder.

    summary = predict_folder("runs/ensemble", "data/Test", "preds", tta="flip")

Writes ``OUT/<input file name>`` masks (uint8 0/85/170/255, the input's georeferencing; fill
pixels of the input are background),
and optionally ``OUT/probabilities/<name>`` (uint8 probability x 255 per class) and
``OUT/overlays/<stem>.png``. Everything is written into a temporary folder beside OUT that
takes OUT's place when the last scene is done: a failure part-way leaves OUT as it was. OUT
must not be, hold or lie inside an input, and an existing OUT is replaced only when it
holds nothing but an earlier prediction's files (glacier/outputs.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from glacier.artifacts import open_artifact
from glacier.atomic import atomic_dir
from glacier.data.competition import find_scenes, read_scene_image
from glacier.data.fill import background_at_fill
from glacier.decisions.loading import calibrated_models
from glacier.outputs import OutputFolder, files_under
from glacier.predict.loading import band_folders_for
from glacier.predict.predictor import Predictor
from glacier.predict.writer import write_mask, write_overlay, write_probabilities


def predict_folder(
    model_path: str | Path,
    input_dir: str | Path,
    out_dir: str | Path,
    *,
    tta: str = "none",
    batch_size: int = 4,
    device: str | torch.device = "auto",
    tile_size: int | None = 512,
    overlap: float = 0.25,
    probabilities: bool = False,
    overlays: bool = False,
    soup: bool = False,
    members: Sequence[str] | None = None,
    progress: bool = True,
    calibration: bool = True,
) -> dict[str, Any]:
    """Predict every scene of ``input_dir`` with what ``model_path`` names (``open_artifact``).

    The band folders read follow the model's bands (``band_folders_for``). ``soup`` averages
    the members' weights into one model instead of averaging their probabilities (the
    ensemble's calibration is then applied only if it was fitted for a soup). ``calibration``
    False ignores the stored decision rule (glacier/decisions/loading.py). Returns a
    summary: model, members, tta, calibration, device, scenes, outputs, seconds, seconds_per_scene.
    """
    artifact = open_artifact(model_path)
    output = OutputFolder(out_dir, "predict")
    output.check_replaceable(
        "--out", inputs=[model_path, artifact.path, getattr(artifact, "run_dir", None), input_dir]
    )
    chosen = calibrated_models(artifact, members=members, calibration=calibration, soup=soup)
    predictor = Predictor(
        chosen.models,
        tta=tta,
        device=device,
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        calibration=chosen.calibration,
        weights=chosen.weights,
    )
    scenes = find_scenes(input_dir, require_labels=False, band_folders=band_folders_for(predictor.bands))

    out_dir = Path(out_dir)
    outputs = []
    start = time.perf_counter()
    with atomic_dir(out_dir) as tmp:
        for scene in tqdm(scenes, desc="predict", unit="scene", disable=not progress):
            image, profile = read_scene_image(scene)
            probs = predictor.predict_probabilities(image)
            indices = background_at_fill(predictor.decide(probs), image)
            name = scene.band_paths[0].name
            write_mask(tmp / name, indices, profile)
            outputs.append(str(out_dir / name))
            if probabilities:
                write_probabilities(tmp / "probabilities" / name, probs, profile)
            if overlays:
                write_overlay(tmp / "overlays" / f"{Path(name).stem}.png", image, predictor.bands, indices)
        output.write_marker(tmp, files_under(tmp))
    seconds = time.perf_counter() - start
    return {
        "model": str(artifact.path),
        "members": len(chosen.souped) or len(chosen.named),
        "soup": bool(chosen.souped),
        "tta": tta,
        "calibration": chosen.describe(),
        "device": str(predictor.device),
        "scenes": len(scenes),
        "outputs": outputs,
        "seconds": round(seconds, 3),
        "seconds_per_scene": round(seconds / max(1, len(scenes)), 4),
    }
