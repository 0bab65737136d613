"""``glacier export-submission``: a model or ensemble -> ``solution.py`` + ``model.pth`` for the platform.

    report = export_submission("runs/ensemble", "submission", tta="flip")

``solution.py`` is ``solution_template.py`` copied verbatim; all configuration goes into
``model.pth``, a plain dict saved with ``torch.save``:

    {"format": "glacier-submission", "format_version": 2, "created_by": "glacier 0.1.0",
     "band_folders": ["Band1", ...], "bands": ["blue", ...], "class_values": [0, 85, 170, 255],
     "tta": "flip", "stride": 32, "weights_dtype": "float32" | "float16",
     "calibration": None | {"log_bias", "temperature", "min_component", "max_hole", "combine"},
     "members": [{"name", "architecture", "kwargs": {smp constructor arguments}, "weight": 1.0,
                  "mean": [...], "std": [...], "state_dict": {plain smp state dict}}]}

``calibration`` is the decision rule fitted on out-of-fold predictions (glacier/decisions/
rule.py, which solution.py repeats); None (``--no-calibration``, or none fitted) is the
argmax of the members' mean probability. Version 2 added it and the members' weights.

Nothing is reported as exported until the exported script, run in a fresh interpreter the
way the platform runs it, reproduces glacier's own masks (see ``selfcheck``).
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from glacier import __version__
from glacier.decisions.loading import calibrated_models
from glacier.domain import CLASS_VALUES
from glacier.errors import ConfigError, ModelError
from glacier.models import GlacierModel, inference_state_dict, smp_init_kwargs
from glacier.options import SUBMISSION_TTA_MODES
from glacier.outputs import OutputFolder
from glacier.predict.loading import band_folders_for
from glacier.predict.predictor import Predictor, member_stats
from glacier.submission import selfcheck

TEMPLATE_PATH = Path(__file__).with_name("solution_template.py")
PACKAGE_FILES = ("model.pth", "solution.py")
"""What an export writes into its --out folder (beside whatever else the folder holds)."""
PACKAGE_FORMAT = "glacier-submission"
PACKAGE_VERSION = 2
MAX_PACKAGE_BYTES = 300 * 1000 * 1000
"""The platform's limit on model.pth (300 MB)."""
_PICKLE_OVERHEAD = 1.02  # torch.save adds key names and headers to the raw tensor bytes


def weights_nbytes(states: Sequence[dict[str, torch.Tensor]], half: bool) -> int:
    """Bytes of the state dicts as they would be stored (floating tensors in fp16 when ``half``)."""
    total = 0
    for state in states:
        for value in state.values():
            itemsize = 2 if half and value.is_floating_point() else value.element_size()
            total += value.numel() * itemsize
    return int(total * _PICKLE_OVERHEAD)


def choose_precision(states: Sequence[dict[str, torch.Tensor]], half: bool | None, limit: int) -> bool:
    """Store in fp16? ``half`` None picks fp32 when it fits the limit. Over the limit is a ModelError."""
    if half is None:
        half = weights_nbytes(states, half=False) > limit
    size = weights_nbytes(states, half=half)
    if size > limit:
        advice = "export fewer members (--members NAME,NAME)" + (
            "" if half else " or store weights in fp16 (--fp16)"
        )
        raise ModelError(
            f"model.pth would be {size / 1e6:.1f} MB ({len(states)} member(s), {'fp16' if half else 'fp32'}), "
            f"{(size - limit) / 1e6:.1f} MB over the platform's {limit / 1e6:.0f} MB limit: {advice}"
        )
    return half


def build_package(
    named_models: Sequence[tuple[str, GlacierModel, Any]],
    *,
    tta: str,
    half: bool,
    stride: int,
    calibration: Any = None,
    weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The model.pth dict for ``named_models`` (see the module docstring); ``calibration`` a
    ``glacier.decisions.rule.Calibration`` or None, ``weights`` one per model (default 1)."""
    bands = tuple(named_models[0][1].bands)
    weights = [1.0] * len(named_models) if weights is None else list(weights)
    members = []
    for (name, model, meta), weight in zip(named_models, weights, strict=True):
        stats = member_stats(model, meta)
        state = {
            key: (
                value.detach().cpu().half() if half and value.is_floating_point() else value.detach().cpu()
            ).clone()
            for key, value in inference_state_dict(model).items()
        }
        members.append(
            {
                "name": name,
                "architecture": model.arch_config["architecture"],
                "kwargs": smp_init_kwargs(model.arch_config),
                "weight": float(weight),
                "mean": list(stats.mean),
                "std": list(stats.std),
                "state_dict": state,
            }
        )
    return {
        "format": PACKAGE_FORMAT,
        "format_version": PACKAGE_VERSION,
        "created_by": f"glacier {__version__}",
        "band_folders": list(band_folders_for(bands)),
        "bands": list(bands),
        "class_values": list(getattr(named_models[0][2], "class_values", CLASS_VALUES)),
        "tta": tta,
        "stride": int(stride),
        "weights_dtype": "float16" if half else "float32",
        "calibration": None if calibration is None else _rule_values(calibration),
        "members": members,
    }


def _rule_values(calibration: Any) -> dict[str, Any]:
    """What solution.py needs of the rule: plain lists and numbers."""
    data = calibration.to_dict()
    return {key: data[key] for key in ("log_bias", "temperature", "min_component", "max_hole", "combine")}


def _as_exported(model: GlacierModel, state: dict[str, torch.Tensor]) -> GlacierModel:
    """A copy of ``model`` whose smp weights are those stored in the package (fp16-rounded or not)."""
    exported = copy.deepcopy(model).cpu()
    exported.net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return exported.eval()


def export_submission(
    model_path: str | Path,
    out_dir: str | Path,
    *,
    tta: str = "none",
    members: Sequence[str] | None = None,
    half: bool | None = None,
    check_input: str | Path | None = None,
    check_tiles: int = 3,
    size_limit: int | None = None,
    calibration: bool = True,
    timing: bool = True,
) -> dict[str, Any]:
    """Write ``out_dir/solution.py`` and ``out_dir/model.pth`` and verify them.

    ``half`` True/False forces fp16/fp32 weights; None stores fp32 unless that exceeds the
    size limit (``size_limit`` bytes, default ``MAX_PACKAGE_BYTES``). The self-check runs
    the exported script in a subprocess on ``check_tiles``
    tiles of ``check_input`` (or synthetic tiles) and requires its masks to equal glacier's
    predictor on the same (exported) weights and TTA for all but ``MAX_MISMATCH_FRACTION`` of
    the pixels. ``calibration`` False exports the plain argmax, not the stored decision rule
    (glacier/decisions/loading.py). ``timing`` times full 512 px tiles through
    ``maskgeration`` after a passed self-check and projects the platform's 25-tile run
    (``selfcheck.time_solution``); False skips it, for a quicker export. Returns a report:
    paths, size, members, precision, calibration, mismatch, timings.
    """
    if tta not in SUBMISSION_TTA_MODES:
        raise ConfigError(
            f"--tta {tta!r}: export supports {', '.join(SUBMISSION_TTA_MODES)}; heavier TTA timed out on the platform"
        )
    size_limit = MAX_PACKAGE_BYTES if size_limit is None else size_limit
    output = OutputFolder(out_dir, "export-submission")
    output.check_no_collision(PACKAGE_FILES, "--out", inputs=[model_path, check_input])
    chosen = calibrated_models(model_path, members=members, calibration=calibration)
    named, models = chosen.named, chosen.models
    band_folders = band_folders_for(models[0][0].bands)
    decision = {"calibration": chosen.calibration, "weights": chosen.weights}
    predictor = Predictor(models, tta=tta, device="cpu", tile_size=None, **decision)  # checks bands agree
    half = choose_precision([inference_state_dict(m) for m, _ in models], half, size_limit)
    package = build_package(named, tta=tta, half=half, stride=predictor.stride, **decision)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = out_dir / f".export-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        torch.save(package, stage / "model.pth")
        size = (stage / "model.pth").stat().st_size
        if size > size_limit:
            raise ModelError(
                f"model.pth is {size / 1e6:.1f} MB, {(size - size_limit) / 1e6:.1f} MB over the "
                f"{size_limit / 1e6:.0f} MB limit: export fewer members (--members) or use --fp16"
            )
        shutil.copyfile(TEMPLATE_PATH, stage / "solution.py")
        selfcheck.check_solution_source(stage / "solution.py")
        check = _self_check(
            stage, named, package, predictor, band_folders, decision, check_input, check_tiles
        )
        if timing:  # only once the masks are right: a failed check need not wait for it
            check.update(selfcheck.time_solution(stage, band_folders, predictor.members[0][1]))
        output.write_marker(out_dir, output.written() | set(PACKAGE_FILES))
        for name in PACKAGE_FILES:
            os.replace(stage / name, out_dir / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return {
        "solution": str(out_dir / "solution.py"),
        "model": str(out_dir / "model.pth"),
        "size_mb": round(size / 1e6, 2),
        "members": [name for name, _, _ in named],
        "souped": chosen.souped,  # the members averaged into the one "soup" model, if any
        "members_left_out": chosen.left_out,
        "calibration": chosen.describe(),
        "weights_dtype": package["weights_dtype"],
        "tta": tta,
        **check,
    }


def shipped_models_words(report: dict[str, Any]) -> str:
    """What an export summary's model.pth holds, in words: "3 member(s)" or "one weight soup
    of 2 members"."""
    if report.get("souped"):
        return f"one weight soup of {len(report['souped'])} members"
    return f"{len(report['members'])} member(s)"


def _self_check(
    stage: Path,
    named: Sequence[tuple[str, GlacierModel, Any]],
    package: dict[str, Any],
    predictor: Predictor,
    band_folders: Sequence[str],
    decision: dict[str, Any],
    check_input: str | Path | None,
    check_tiles: int,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        tiles_dir = Path(tmp) / "tiles"
        if check_input is not None:
            selfcheck.copy_first_tiles(check_input, tiles_dir, check_tiles)
        else:
            stats = predictor.members[0][1]
            sizes = [(128, 128), (70, 90), (96, 64)][: max(1, check_tiles)]
            selfcheck.write_synthetic_tiles(tiles_dir, band_folders, stats, sizes=sizes)
        run = selfcheck.run_solution(stage, tiles_dir)
        exported = [
            (_as_exported(model, member["state_dict"]), meta)
            for (_, model, meta), member in zip(named, package["members"], strict=True)
        ]
        reference = Predictor(exported, tta=package["tta"], device="cpu", tile_size=None, **decision)
        comparison = selfcheck.compare_masks(
            run["masks"], selfcheck.reference_masks(reference, tiles_dir, band_folders)
        )
        report: dict[str, Any] = {
            "check_input": str(check_input) if check_input is not None else "synthetic",
            "check_tiles": len(run["masks"]),
            "tile_ids": sorted(run["masks"]),
            **comparison,
        }
        if package["weights_dtype"] == "float16":
            # What storing fp16 costs against the full-precision model (information, not a failure).
            full = selfcheck.compare_masks(
                run["masks"], selfcheck.reference_masks(predictor, tiles_dir, band_folders)
            )
            report["fp16_vs_fp32_mismatch_fraction"] = full["mismatch_fraction"]
    if comparison["mismatch_fraction"] > selfcheck.MAX_MISMATCH_FRACTION:
        raise ModelError(
            f"self-check failed: solution.py's masks differ from glacier predict in "
            f"{comparison['differing_pixels']} of {comparison['pixels']} pixels "
            f"({comparison['mismatch_fraction']:.2e} > {selfcheck.MAX_MISMATCH_FRACTION:.0e}); nothing was written"
        )
    return report
