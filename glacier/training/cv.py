"""K-fold cross-validation: the same ``fit`` once per fold, then a summary of the folds.

    RUN/fold_0/ ... RUN/fold_{K-1}/   one run folder per fold (docs/ARCHITECTURE.md)
    RUN/cv_summary.json               per-fold MCC and IoU, their mean and std; the pooled
                                      out-of-fold MCC, the calibration fitted on it and the
                                      all-data training length (glacier/decisions/fitting.py)
    RUN/cv_summary.md                 the same as a markdown table

K is the prepared dataset's ``num_folds``. With ``resume``, folds that finished are skipped
and the interrupted one continues from its latest state.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from glacier import atomic
from glacier.artifacts.run import RunResult
from glacier.config import GlacierConfig
from glacier.errors import ConfigError
from glacier.training.runs import (
    ALL_FOLDS,
    NoHooks,
    PlannedRun,
    RunHooks,
    fit_in_turn,
    is_main_process,
    resolve_folds,
)

SUMMARY_JSON = "cv_summary.json"
SUMMARY_MD = "cv_summary.md"


@dataclasses.dataclass
class CVResult:
    out: Path
    folds: dict[int, RunResult]
    summary: dict[str, Any] | None
    """None when a fold stopped early (signal, max_hours): resume to finish."""

    @property
    def finished(self) -> bool:
        return self.summary is not None


def fold_dir(run_dir: Path, fold: int) -> Path:
    return run_dir / f"fold_{fold}"


def run_cross_validation(
    cfg: GlacierConfig,
    *,
    folds: Sequence[int] | None = None,
    init_from: str | Path | None = None,
    resume: str | Path | None = None,
    out: str | Path | None = None,
    accelerator_factory: Callable[[], Any] | None = None,
    print_fn: Callable[[str], None] = print,
    hooks: RunHooks = NoHooks(),  # e.g. glacier.hub.sync.HubSync: restore and push each run
) -> CVResult:
    """Fit every fold (``folds``, default all K of the prepared dataset) into ``RUN/fold_k``.

    ``resume`` (any value, e.g. ``"latest"``) skips finished folds and resumes the others
    from their latest state. ``accelerator_factory`` makes the Accelerator of each fold
    (default: ``fit`` creates one). Writes the CV summary when every fold has finished.
    """
    if cfg.data.use_all_for_training:
        raise ConfigError("cross-validation needs validation folds: data.use_all_for_training is true")
    run_dir = Path(out if out is not None else cfg.out)
    folds = resolve_folds(cfg, ALL_FOLDS if folds is None else folds)
    planned = [
        PlannedRun(
            k,
            f"fold {k}",
            cfg.updated(**{"data.fold": k, "name": f"{cfg.name}_fold{k}"}),
            fold_dir(run_dir, k),
        )
        for k in folds
    ]
    results, finished = fit_in_turn(
        planned,
        init_from=init_from,
        resume=resume,
        accelerator_factory=accelerator_factory,
        print_fn=print_fn,
        hooks=hooks,
    )
    if not finished:
        return CVResult(run_dir, results, None)

    summary = summarize_folds(results)
    if is_main_process():
        from glacier.decisions.fitting import decide_cross_validation

        summary.update(decide_cross_validation(run_dir, {k: fold_dir(run_dir, k) for k in folds}, print_fn))
        write_summary(run_dir, summary)
        print_fn(summary_table(summary))
    return CVResult(run_dir, results, summary)


def summarize_folds(results: dict[int, RunResult]) -> dict[str, Any]:
    """Per-fold MCC / IoU / mean IoU of the model each fold hands on (its ``best/``:
    ``checkpoints.select``), with mean and sample std over folds."""
    folds = []
    for k, result in sorted(results.items()):
        m = result.best_metrics
        folds.append(
            {
                "fold": k,
                "mcc": m.get("mcc"),
                "iou": m.get("iou", {}),
                "miou": m.get("miou"),
                "epoch": m.get("epoch"),
                "model": str(result.best_dir) if result.best_dir else None,
            }
        )
    columns = {"mcc": [f["mcc"] for f in folds], "miou": [f["miou"] for f in folds]}
    for name in dict.fromkeys(n for f in folds for n in f["iou"]):
        columns[f"iou_{name}"] = [f["iou"].get(name) for f in folds]
    spread = {key: mean_and_std(values) for key, values in columns.items()}
    return {
        "num_folds": len(folds),
        "folds": folds,
        "mean": {key: m for key, (m, _) in spread.items()},
        "std": {key: s for key, (_, s) in spread.items()},
        "std_kind": "sample (n-1)",
    }


def mean_and_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the values present (None: missing);
    one value has std 0, none has neither."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None
    return statistics.fmean(present), statistics.stdev(present) if len(present) > 1 else 0.0


def summary_table(summary: dict[str, Any]) -> str:
    """The summary as a markdown table (readable printed too)."""
    keys = list(summary["mean"])
    header = "| fold | " + " | ".join(_label(k) for k in keys) + " |"
    lines = [header, "|" + " --- |" * (len(keys) + 1)]
    for fold in summary["folds"]:
        values = {"mcc": fold["mcc"], "miou": fold["miou"], **{f"iou_{n}": v for n, v in fold["iou"].items()}}
        lines.append(f"| {fold['fold']} | " + " | ".join(_fmt(values.get(k)) for k in keys) + " |")
    lines.append(
        "| mean ± std | "
        + " | ".join(f"{_fmt(summary['mean'][k])} ± {_fmt(summary['std'][k])}" for k in keys)
        + " |"
    )
    return "\n".join(lines)


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    atomic.write_json(run_dir / SUMMARY_JSON, summary)
    from glacier.decisions.fitting import decisions_markdown

    atomic.write_text(
        run_dir / SUMMARY_MD,
        f"# Cross-validation: {summary['num_folds']} folds\n\n{summary_table(summary)}\n"
        + decisions_markdown(summary),
    )


def _label(key: str) -> str:
    return {"mcc": "MCC", "miou": "mean IoU"}.get(key, key.replace("iou_", "IoU "))


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"
