"""Final models on all data: the length cross-validation chose, the calibration it fitted.

    length = cv_training_length([cv / "fold_0", cv / "fold_1", ...])
    cfg, line = all_data_config(cfg, length)            # data.use_all_for_training, epochs
    source = CvSource.open("runs/competition_finetune")  # a CV run or a CV ensemble folder

**The length rule.** Each cross-validation run's model (its ``best/``: the epoch of its best
validation MCC, or its last with ``checkpoints.select=last``) was saved after some epoch; the
samples it had drawn by then are ``epoch x samples per epoch`` (the sampler's
``samples_per_epoch``, else the fold's training tiles). The final model trains for the
median of those sample counts over the runs, in whole epochs of its own (all tiles): the
same number of optimizer steps the median fold needed, at the same batch size, with the
learning-rate schedule stretched over exactly that length. The median, not the mean: one
fold that peaked early or late does not move it.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glacier.artifacts import EnsembleFolder
from glacier.artifacts.run import RunFolder
from glacier.config import GlacierConfig, fold_split_seed
from glacier.errors import ConfigError

LENGTH_RULE = "median over the CV runs of the samples drawn up to the model each handed on (its epoch x samples per epoch)"
CV_SUMMARY = "cv_summary.json"


def _samples_per_epoch(cfg: dict[str, Any], train_tiles: int) -> int:
    return int(cfg["training"]["sampler"].get("samples_per_epoch") or train_tiles)


def _train_tiles(cfg: dict[str, Any], use_all: bool) -> int:
    from glacier.data.prepared import PreparedDataset

    data = cfg["data"]
    prepared = PreparedDataset.open(data["path"])
    train, _ = prepared.train_val_indices(
        data["fold"],
        use_all=use_all,
        min_valid_fraction=data.get("min_valid_fraction", 0.0),
        split_seed=fold_split_seed(data.get("fold_split", "prepared"), cfg["training"]["seed"]),
    )
    return len(train)


def cv_training_length(run_dirs: Sequence[str | Path]) -> dict[str, Any]:
    """The training length the CV runs ``run_dirs`` choose (module docstring: the rule)."""
    runs = []
    for run_dir in run_dirs:
        folder = RunFolder(run_dir)
        cfg, epoch = folder.config(), folder.model_metrics().get("epoch")
        if cfg is None or epoch is None:
            raise ConfigError(f"{run_dir}: no config.yaml or best model epoch; is it a finished CV run?")
        per_epoch = _samples_per_epoch(cfg, _train_tiles(cfg, use_all=False))
        runs.append({"run": Path(run_dir).name, "best_epoch": int(epoch), "samples_per_epoch": per_epoch})
    samples = statistics.median(r["best_epoch"] * r["samples_per_epoch"] for r in runs)
    return {"rule": LENGTH_RULE, "runs": runs, "samples": float(samples)}


def all_data_config(cfg: GlacierConfig, length: dict[str, Any]) -> tuple[GlacierConfig, str]:
    """``cfg`` training on every tile for ``length["samples"]`` samples, in whole epochs."""
    trained_on_all = cfg.updated(**{"data.use_all_for_training": True})
    per_epoch = _samples_per_epoch(
        trained_on_all.to_dict(), _train_tiles(trained_on_all.to_dict(), use_all=True)
    )
    epochs = max(1, round(length["samples"] / per_epoch))
    overrides: dict[str, Any] = {"training.epochs": epochs, "training.early_stopping_patience": None}
    if "steps" in type(cfg.training).model_fields:  # a step budget would override the chosen length
        overrides["training.steps"] = None
    line = (
        f"all data: {epochs} epochs of {per_epoch} samples ({length['samples']:.0f} samples chosen by "
        f"cross-validation: {LENGTH_RULE})"
    )
    return trained_on_all.updated(**overrides), line


@dataclasses.dataclass(frozen=True)
class CvSource:
    """What a cross-validation left for the final models: its length and calibration."""

    path: Path
    kind: str
    """``cv`` (``finetune --all-folds``) or ``ensemble`` (``ensemble --all-folds``)."""
    length: dict[str, Any]
    calibration: dict[str, Any] | None
    seeds: list[int]

    @classmethod
    def open(cls, path: str | Path) -> CvSource:
        """The CV run folder (``cv_summary.json``) or CV ensemble folder ``path``."""
        path = Path(path)
        summary = path / CV_SUMMARY
        if summary.is_file():
            data = json.loads(summary.read_text(encoding="utf-8"))
            runs = [path / f"fold_{f['fold']}" for f in data["folds"]]
            length = data.get("final_length") or cv_training_length(runs)
            seed = (RunFolder(runs[0]).config() or {}).get("training", {}).get("seed")
            return cls(path, "cv", length, data.get("calibration"), [seed] if seed is not None else [])
        if EnsembleFolder.found_at(path):
            manifest = EnsembleFolder(path).manifest
            if not manifest.get("final_length"):
                raise ConfigError(
                    f"--from-cv {path}: the ensemble has no cross-validation length (was it trained with --all-folds?)"
                )
            seeds = sorted({m["seed"] for m in manifest["members"] if m.get("seed") is not None})
            return cls(path, "ensemble", manifest["final_length"], manifest.get("calibration"), seeds)
        raise ConfigError(
            f"--from-cv {path}: neither a cross-validation run ({CV_SUMMARY}, from finetune --all-folds) "
            "nor an ensemble folder from ensemble --all-folds"
        )


def carried_calibration(source: CvSource, seeds: Sequence[int] | None) -> dict[str, Any] | None:
    """The calibration ``source`` fitted, for final models of ``seeds`` (None: one model).

    A CV of one model calibrates one model; an ensemble's rule (weights, temperature,
    biases) holds for an ensemble of the same kind: as many seeds, and the same seeds when
    its weights differ between them (the seeds it weighs 0 may be left out). Anything else
    is a ConfigError saying what to train.
    """
    if source.calibration is None:
        return None
    rule = dict(source.calibration)
    rule["fitted"] = {**(rule.get("fitted") or {}), "carried_from": str(source.path)}
    if seeds is None or (source.kind == "cv" and len(seeds) == 1):
        if source.kind != "cv":
            raise ConfigError(
                f"--from-cv {source.path}: an ensemble's calibration is fitted for its average, not one "
                "model; give the finetune --all-folds run folder"
            )
        return rule
    if source.kind == "cv":
        raise ConfigError(
            f"--from-cv {source.path}: one model's cross-validation cannot calibrate an ensemble of "
            f"{len(seeds)} seeds; train `glacier ensemble --all-folds --seeds {','.join(map(str, seeds))}` "
            "and pass its folder"
        )
    from glacier.training.ensemble import member_name

    unit_weights = rule["fitted"].get("unit_weights") or {f"seed{s}": 1.0 for s in source.seeds}
    kept = {f"seed{s}" for s in kept_seeds(source)}
    wanted = {f"seed{s}": s for s in seeds}
    # A seed the OOF fit gave no weight need not be trained: its model would change nothing.
    if set(wanted) in (set(unit_weights), kept):
        weights = {member_name(s, None): float(unit_weights[u]) for u, s in wanted.items()}
    elif len(wanted) == len(unit_weights) and len(set(unit_weights.values())) == 1:
        weights = {member_name(s, None): 1.0 for s in seeds}  # same kind, equal weights: any seeds
    else:
        raise ConfigError(
            f"--from-cv {source.path}: its calibration is for seeds {sorted(unit_weights)} with weights "
            f"{unit_weights}; train the final ensemble with the seeds it weighs (--seeds "
            f"{','.join(map(str, kept_seeds(source)))})"
        )
    return {**rule, "weights": weights}


def kept_seeds(source: CvSource) -> list[int]:
    """The seeds ``source``'s calibration gives a weight above 0 (every seed without one)."""
    unit_weights = ((source.calibration or {}).get("fitted") or {}).get("unit_weights")
    if not unit_weights:
        return list(source.seeds)
    return [s for s in source.seeds if unit_weights.get(f"seed{s}", 0) > 0]


def _length_config(cfg: GlacierConfig, source: CvSource, keep_length: bool) -> tuple[GlacierConfig, str]:
    if not keep_length:
        return all_data_config(cfg, source.length)
    cfg = cfg.updated(**{"data.use_all_for_training": True})
    return (
        cfg,
        f"all data: {cfg.training.epochs} epochs as given (--epochs), not the length {source.path} chose",
    )


def fit_all_data(
    cfg: GlacierConfig,
    from_cv: str | Path,
    *,
    keep_length: bool = False,
    init_from: str | Path | None = None,
    resume: str | Path | None = None,
    print_fn=print,
    fit_fn=None,
):
    """One final model on every tile, as long as the CV ``from_cv`` chose (``keep_length``:
    ``cfg``'s epochs instead), with the CV's calibration in its ``best/`` model folder.

    ``fit_fn(cfg)`` trains the run (default ``fit`` with ``init_from`` and ``resume``; the
    training commands pass theirs, which restores and pushes it)."""
    from glacier.artifacts import ModelFolder
    from glacier.decisions.rule import Calibration
    from glacier.training.loop import fit
    from glacier.training.runs import is_main_process

    source = CvSource.open(from_cv)
    calibration = carried_calibration(source, None)
    Calibration.from_dict(calibration, str(source.path))  # a damaged rule fails before training
    cfg, line = _length_config(cfg, source, keep_length)
    if is_main_process():
        print_fn(line)
    result = (fit_fn or (lambda c: fit(c, init_from=init_from, resume=resume)))(cfg)
    if result.finished and is_main_process() and calibration is not None:
        # Without a CV rule the model keeps its own (the sampler-prior correction, if any).
        ModelFolder(RunFolder(result.out).best).write_calibration(calibration)
    return result


def train_all_data_ensemble(
    cfg: GlacierConfig,
    *,
    seeds: Sequence[int],
    from_cv: str | Path,
    out: str | Path,
    keep_length: bool = False,
    init_from: str | Path | None = None,
    resume: str | Path | None = None,
    hooks=None,
    print_fn=print,
):
    """One final model per seed on every tile, as long as the CV ensemble ``from_cv`` chose,
    written as an ensemble folder carrying that ensemble's calibration."""
    from glacier.decisions.rule import Calibration
    from glacier.training.ensemble import train_ensemble
    from glacier.training.runs import is_main_process

    source = CvSource.open(from_cv)
    calibration = carried_calibration(source, list(seeds))
    Calibration.from_dict(calibration, str(source.path))
    cfg, line = _length_config(cfg, source, keep_length)
    if is_main_process():
        print_fn(line)
    extra = {"calibration": calibration, "final_length": {**source.length, "from": str(source.path)}}
    return train_ensemble(
        cfg,
        seeds=seeds,
        out=out,
        init_from=init_from,
        resume=resume,
        print_fn=print_fn,
        extra=extra,
        **({} if hooks is None else {"hooks": hooks}),
    )
