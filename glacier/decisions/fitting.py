"""The decisions a finished cross-validation or seed x fold ensemble leaves behind.

    extra = decide_cross_validation(cv_dir, {0: cv_dir / "fold_0", ...})      # one model per fold
    extra = decide_ensemble([MemberRun("seed42_fold0", 42, 0, run_dir), ...])   # seeds x folds

Both pool the runs' out-of-fold predictions (every training tile once), report the pooled
OOF MCC with per-class IoU, fit the decision rule on it (glacier/decisions/calibrate.py) and
return what goes into ``cv_summary.json`` or ``ensemble.json``: ``oof``, ``calibration``
(None until the OOF covers every tile: all folds) and ``final_length`` (the all-data rule).
A cross-validation also writes its rule into every fold's ``best/`` model folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glacier.artifacts import ModelFolder, RunFolder
from glacier.decisions.calibrate import (
    OofArrays,
    class_iou_line,
    cross_fitted,
    fit_calibration,
    rule_is_kept,
)
from glacier.decisions.oof import OofMember, OofPool
from glacier.decisions.rule import Calibration
from glacier.decisions.select import (
    choice_words,
    choose_combination,
    combination_row,
    combination_table,
    greedy_selection,
    greedy_weights,
    plain_row,
)
from glacier.errors import GlacierError

Print = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class MemberRun:
    """One ensemble member: its name, seed, validation fold and run folder."""

    name: str
    seed: int | None
    fold: int | None
    run_dir: Path


def decide_cross_validation(
    run_dir: Path, fold_dirs: dict[int, Path], print_fn: Print = print
) -> dict[str, Any]:
    """OOF figures and the single-model rule of a CV, written into each fold's best model."""
    from glacier.training.all_data import cv_training_length

    extra: dict[str, Any] = {"final_length": cv_training_length(list(fold_dirs.values()))}
    members = [OofMember(f"fold_{k}", "cv", RunFolder(d).oof) for k, d in sorted(fold_dirs.items())]
    pool = _pool(members, print_fn)
    if pool is None:
        return {**extra, "oof": None, "calibration": None}
    data = OofArrays.from_pool(pool)
    rule, extra["oof"] = fit_rule(
        pool, data, data, [1.0], "probability", kind="single model", print_fn=print_fn
    )
    if rule is not None:
        rule = rule.replace(fitted={**rule.fitted, "source": str(run_dir)})
    extra["calibration"] = None if rule is None else rule.to_dict()
    if rule is not None:
        for fold_dir in fold_dirs.values():
            ModelFolder(RunFolder(fold_dir).best).write_calibration(extra["calibration"])
    return extra


def decide_ensemble(
    members: Sequence[MemberRun], *, soup: bool = True, print_fn: Print = print
) -> dict[str, Any]:
    """OOF figures, the combination table (probability / log-probability mean, greedy
    selection, weight soup) and the rule of the best combination, its weights by member."""
    from glacier.training.all_data import cv_training_length

    extra: dict[str, Any] = {"final_length": cv_training_length([m.run_dir for m in members])}
    oof_members = [OofMember(m.name, _unit(m), RunFolder(m.run_dir).oof) for m in members]
    pool = _pool(oof_members, print_fn)
    if pool is None:
        return {**extra, "oof": None, "calibration": None}
    data = OofArrays.from_pool(pool)
    rows, steps = _combination_rows(pool, data, members, soup, print_fn)
    # Honest, and not on noise (glacier/decisions/select.py: the one-standard-error rule).
    chosen, choice = choose_combination(rows, data.groups())
    print_fn(f"chosen on out-of-fold MCC: {chosen['name']} ({choice_words(choice)})")
    if chosen["combine"] == "soup":  # one model per tile, fitted on the soups' own OOF
        unit_weights = dict.fromkeys(data.units, 1.0)
        fit_data, fit_weights = data.with_units(["soup"], [chosen["probs"]]), [1.0]
    else:
        unit_weights = {u: chosen["weights"][u] for u in data.units}
        fit_data, fit_weights = data, list(unit_weights.values())
    rule, oof = fit_rule(
        pool, data, fit_data, fit_weights, chosen["combine"], kind="ensemble", print_fn=print_fn
    )
    chosen_name = chosen["name"]
    if rule is not None and rule.fitted.get("kept") is False:  # the plain mean of every unit
        unit_weights, chosen_name = (
            dict.fromkeys(data.units, 1.0),
            f"probability mean, no rule ({chosen_name} {NOT_KEPT})",
        )
    oof.update(
        {
            "table": [plain_row(r) for r in rows],
            "greedy_steps": steps,
            "chosen": chosen_name,
            "choice": choice,
        }
    )
    extra["oof"] = oof
    if rule is not None:
        weights = {m.name: unit_weights[o.unit] for m, o in zip(members, oof_members, strict=True)}
        rule = rule.replace(weights=weights, fitted={**rule.fitted, "unit_weights": unit_weights})
    extra["calibration"] = None if rule is None else rule.to_dict()
    return extra


def _unit(member: MemberRun) -> str:
    return f"seed{member.seed}" if member.seed is not None else member.name


def _pool(members: Sequence[OofMember], print_fn: Print) -> OofPool | None:
    missing = [m.name for m in members if not m.oof.exists()]
    if missing:
        print_fn(f"no out-of-fold predictions for {', '.join(missing)} (oof.write false?): no calibration")
        return None
    return OofPool(members)


def fit_rule(
    pool: OofPool,
    data: OofArrays,
    fit_data: OofArrays,
    weights: Sequence[float],
    combine_rule: str,
    *,
    kind: str,
    print_fn: Print,
) -> tuple[Calibration | None, dict[str, Any]]:
    """Pooled OOF metrics of ``data``'s plain mean; with every tile covered, the rule fitted on
    ``fit_data`` (``data``, or the soups' OOF) and its cross-fitted MCC. The rule is kept only
    when that cross-fitted MCC is at least the plain argmax's; otherwise the identity rule comes
    back, marked ``fitted["kept"] = False`` with the rejected rule recorded. ``pool`` gives
    the coverage, tiles and TTA the report names."""
    from glacier.decisions.calibrate import combine, score

    plain = Calibration.identity()
    uncalibrated = score(combine(data.unit_probs, [1.0] * len(data.unit_probs), plain), data.labels, plain)
    oof: dict[str, Any] = {
        "coverage": pool.coverage(),
        "tiles": len(pool.tiles),
        "tta": pool.tta,
        "mcc": uncalibrated["mcc"],
        "iou": uncalibrated["iou"],
        "pixels": uncalibrated["pixels"],
    }
    print_fn(
        f"pooled out-of-fold MCC {oof['mcc']:.4f} over {pool.coverage()}; IoU {class_iou_line(oof['iou'])}"
    )
    if not pool.covers_all:
        print_fn("calibration needs out-of-fold predictions of every tile (train every fold: --all-folds)")
        return None, oof
    rule, report = fit_calibration(fit_data, weights, combine_rule)
    honest = cross_fitted(fit_data, lambda d: fit_calibration(d, weights, combine_rule)[0], weights)
    if not rule_is_kept(honest["mcc"], oof["mcc"]):
        # On tiles it was not fitted on, the rule does worse than no rule at all.
        print_fn(
            f"decision rule not kept: its cross-fitted MCC {honest['mcc']:.4f} is below the plain "
            f"argmax's {oof['mcc']:.4f}; predicting by the argmax of the plain mean"
        )
        return _no_rule(pool, oof, kind, rule, honest["mcc"])
    if fit_data is not data:  # "before" is what --no-calibration predicts: the plain mean
        report["stages"] = {
            "uncalibrated": oof["mcc"],
            "combined": report["stages"].pop("uncalibrated"),
            **report["stages"],
        }
        report.update({"oof_mcc_before": oof["mcc"], "iou_before": oof["iou"]})
    fitted = {
        **_fit_source(pool, kind),
        **report,
        "cross_fitted_mcc": honest["mcc"],
        "cross_fitted_iou": honest["iou"],
    }
    oof.update({"calibrated_mcc": report["oof_mcc_after"], "calibrated_iou": report["iou_after"]})
    oof.update({"cross_fitted_mcc": honest["mcc"], "stages": report["stages"], "rule": rule.describe()})
    print_fn(
        f"calibrated out-of-fold MCC {report['oof_mcc_after']:.4f} (cross-fitted {honest['mcc']:.4f}); "
        f"IoU {class_iou_line(report['iou_after'])}; rule: {rule.describe()}"
    )
    return rule.replace(fitted=fitted), oof


NOT_KEPT = "not kept"


def _fit_source(pool: OofPool, kind: str) -> dict[str, Any]:
    """What every fitted rule records of the OOF it was fitted on."""
    return {"kind": kind, "tta": pool.tta, "oof_tiles": len(pool.tiles)}


def _no_rule(
    pool: OofPool, oof: dict[str, Any], kind: str, rejected: Calibration, honest_mcc: float
) -> tuple[Calibration, dict[str, Any]]:
    """The identity rule (argmax of the plain mean), recording the rule it replaced."""
    fitted = {
        **_fit_source(pool, kind),
        "kept": False,
        "rejected": {"rule": rejected.describe(), "cross_fitted_mcc": honest_mcc},
        "oof_mcc_before": oof["mcc"],
        "oof_mcc_after": oof["mcc"],
        "cross_fitted_mcc": oof["mcc"],
    }
    oof.update(
        {
            "calibrated_mcc": oof["mcc"],
            "calibrated_iou": oof["iou"],
            "cross_fitted_mcc": oof["mcc"],
            "rule": f"{NOT_KEPT} ({rejected.describe()}: cross-fitted MCC {honest_mcc:.4f})",
        }
    )
    return Calibration.identity().replace(fitted=fitted), oof


def _combination_rows(pool, data, members, soup: bool, print_fn: Print) -> tuple[list[dict], list[dict]]:
    units, n = data.units, len(data.units)
    rows: list[dict[str, Any]] = []
    if n > 1:
        for i, unit in enumerate(units):
            rows.append(combination_row(f"{unit} alone", data, np.eye(n)[i].tolist(), "probability"))
    rows.append({**combination_row("probability mean", data, [1.0] * n, "probability"), "candidate": True})
    rows.append(
        {**combination_row("log-probability mean", data, [1.0] * n, "log_probability"), "candidate": True}
    )
    steps: list[dict] = []
    if n > 1:
        weights, steps = greedy_selection(data, "probability")
        label = (
            "greedy selection (" + ", ".join(f"{u} x{w:g}" for u, w in zip(units, weights, strict=True)) + ")"
        )
        row = combination_row(label, data, weights, "probability", choose=greedy_weights("probability"))
        rows.append({**row, "candidate": True})
        if soup:
            rows += _soup_row(pool, data, members, print_fn)
    print_fn(combination_table(rows))
    return rows, steps


def _soup_row(pool: OofPool, data: OofArrays, members, print_fn: Print) -> list[dict[str, Any]]:
    """The weight soup of each fold's members, predicting that fold's OOF tiles (measured,
    not shipped: ``glacier predict --soup`` uses it)."""
    try:
        probs = soup_oof(pool, members)
    except GlacierError as exc:
        print_fn(f"weight soup not measured: {exc}")
        return []
    row = combination_row("weight soup (per fold)", data.with_units(["soup"], [probs]), [1.0], "soup")
    return [{**row, "candidate": True, "probs": probs}]


def soup_oof(pool: OofPool, members: Sequence[MemberRun]) -> np.ndarray:
    """(K, N, T, T) probabilities of the per-fold weight soups on the pooled OOF tiles."""
    from glacier.data.prepared import PreparedDataset
    from glacier.predict import Predictor, load_models, soup_with_meta
    from glacier.training.oof import predict_tiles

    if not pool.shares_split:
        raise GlacierError(
            "the units come from different fold splits (data.fold_split): a fold's soup would "
            "average models that trained on that fold's tiles"
        )
    reference = pool.by_unit[pool.units[0]]
    prepared = PreparedDataset.open(reference[pool.folds[0]].oof.meta["prepared"])
    parts = []
    for fold in pool.folds:
        fold_models = [load_models(RunFolder(m.run_dir).best)[0] for m in members if m.fold == fold]
        predictor = Predictor(
            [soup_with_meta(fold_models)], tta=pool.tta or "none", device="auto", tile_size=None
        )
        parts.append(predict_tiles(predictor, prepared, reference[fold].oof.tiles))
    return np.moveaxis(np.concatenate(parts).astype(np.float32), 1, 0)


def decisions_markdown(summary: dict[str, Any]) -> str:
    """The OOF, calibration and all-data length of a summary as markdown lines ('' if none)."""
    oof, calibration, length = summary.get("oof"), summary.get("calibration"), summary.get("final_length")
    lines = []
    if oof:
        lines += [
            "",
            f"Pooled out-of-fold MCC {oof['mcc']:.4f} over {oof['coverage']} (TTA {oof['tta']}); "
            f"IoU {class_iou_line(oof['iou'])}.",
        ]
        if oof.get("calibrated_mcc") is not None:
            lines.append(
                f"Calibrated: {oof['calibrated_mcc']:.4f} (cross-fitted {oof['cross_fitted_mcc']:.4f}); "
                f"IoU {class_iou_line(oof['calibrated_iou'])}."
            )
    if calibration:
        lines.append(f"Calibration: {Calibration.from_dict(calibration).describe()}.")
    if length:
        lines.append(f"All-data training length: {length['samples']:.0f} samples ({length['rule']}).")
    return "\n".join(lines) + ("\n" if lines else "")
