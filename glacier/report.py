"""The demo's end-of-run report: measured figures as Markdown (for people) and JSON (for tests).

The report only formats what the run measured (``DemoReport.from_results``); a figure the
run did not produce is shown as missing, never filled in.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class StageTiming:
    stage: str
    seconds: float


@dataclasses.dataclass
class CvSummary:
    """Per-fold validation MCC of one cross-validation and its mean +/- sample standard
    deviation, as the cross-validation computed them (``glacier.training.cv.summarize_folds``)."""

    fold_mcc: dict[int, float | None]
    mean: float | None
    std: float | None

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> CvSummary:
        """From a cross-validation summary (the content of ``cv_summary.json``)."""
        return cls(
            {int(f["fold"]): f["mcc"] for f in summary["folds"]},
            summary["mean"]["mcc"],
            summary["std"]["mcc"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "folds": {str(k): v for k, v in sorted(self.fold_mcc.items())},
            "mean_mcc": self.mean,
            "std_mcc": self.std,
        }


@dataclasses.dataclass
class DemoReport:
    """What one demo run measured, and where its outputs are."""

    out: Path
    size: dict[str, Any]
    seed: int
    timings: list[StageTiming]
    total_seconds: float
    pretrain_mcc: float | None = None
    cv_pretrained: CvSummary | None = None
    cv_scratch: CvSummary | None = None
    test: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``ensemble`` (calibrated), ``ensemble_uncalibrated``, ``all_data`` (the final models,
    calibrated), ``best_single`` and ``best_single_calibrated``: {"name", "mcc", "iou",
    "calibration"} on the held-out Test scenes."""
    decisions: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``single`` and ``ensemble``: {"oof": ..., "calibration": ...} fitted on out-of-fold
    predictions (glacier/decisions/fitting.py)."""
    submission: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)
    push: dict[str, Any] | None = None
    recipe: dict[str, str] = dataclasses.field(default_factory=dict)
    """``pretrain`` and ``finetune``: the preset and what it trains with (``recipe_line``)."""

    @classmethod
    def from_results(
        cls,
        results: dict[str, Any],
        *,
        size: dict[str, Any],
        seed: int,
        out: Path,
        timings: list[StageTiming],
        total_seconds: float,
    ) -> DemoReport:
        def cv(key: str) -> CvSummary | None:
            entry = results.get(key)
            return CvSummary.from_summary(entry["summary"]) if entry else None

        single = (results.get("cv_pretrained") or {}).get("summary") or {}
        ensemble = results.get("ensemble") or {}
        decisions = {
            name: {"oof": entry.get("oof"), "calibration": entry.get("calibration")}
            for name, entry in (("single", single), ("ensemble", ensemble))
            if entry.get("oof")
        }

        return cls(
            out=Path(out),
            size=size,
            seed=seed,
            timings=timings,
            total_seconds=total_seconds,
            pretrain_mcc=(results.get("pretrain") or {}).get("mcc"),
            cv_pretrained=cv("cv_pretrained"),
            cv_scratch=cv("cv_scratch"),
            test=results.get("test", {}),
            decisions=decisions,
            submission=results.get("submission", {}),
            outputs=results.get("outputs", {}),
            push=results.get("push"),
            recipe=results.get("recipe", {}),
        )

    @property
    def failures(self) -> list[str]:
        """The checks this run failed (the submission self-check), for the exit status."""
        return ["submission self-check"] if self.submission and not self.submission.get("passed") else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "size": self.size,
            "seed": self.seed,
            "total_seconds": self.total_seconds,
            "timings": [dataclasses.asdict(t) for t in self.timings],
            "pretrain_mcc": self.pretrain_mcc,
            "cv_pretrained": self.cv_pretrained.to_dict() if self.cv_pretrained else None,
            "cv_scratch": self.cv_scratch.to_dict() if self.cv_scratch else None,
            "test": self.test,
            "decisions": self.decisions,
            "submission": self.submission,
            "outputs": self.outputs,
            "push": self.push,
            "recipe": self.recipe,
        }

    # ------------------------------------------------------------------ markdown
    def markdown(self) -> str:
        lines = [
            "# glacier demo report",
            "",
            f"Size `{self.size.get('name')}`: {self.size.get('images')} training images and "
            f"{self.size.get('test_images')} held-out test scenes of {self.size.get('image_size')} px, "
            f"seed {self.seed}. Total {self.total_seconds:.0f} s. Every figure below was measured in this run.",
        ]
        lines += (
            self._recipe_section() + self._cv_section() + self._decisions_section() + self._test_section()
        )
        lines += self._submission_section()
        lines += self._timing_section() + self._outputs_section()
        return "\n".join(lines).rstrip() + "\n"

    def _recipe_section(self) -> list[str]:
        if not self.recipe:
            return []
        names = {"pretrain": "HKH pretraining", "finetune": "Fine-tuning (every fold and seed)"}
        return ["", "## Recipe", ""] + [
            f"- {names.get(stage, stage)}: {line}" for stage, line in self.recipe.items()
        ]

    def _cv_section(self) -> list[str]:
        if not (self.cv_pretrained or self.cv_scratch):
            return []
        folds = sorted(
            set(getattr(self.cv_pretrained, "fold_mcc", {})) | set(getattr(self.cv_scratch, "fold_mcc", {}))
        )
        lines = [
            "",
            "## Cross-validation (validation MCC per fold, split by image)",
            "",
            "| fold | fine-tuned from HKH pretraining | from scratch |",
            "| --- | --- | --- |",
        ]
        for fold in folds:
            lines.append(f"| {fold} | {_fold(self.cv_pretrained, fold)} | {_fold(self.cv_scratch, fold)} |")
        lines.append(
            f"| **mean +/- std** | **{_mean_std(self.cv_pretrained)}** | **{_mean_std(self.cv_scratch)}** |"
        )
        if self.pretrain_mcc is not None:
            lines += ["", f"HKH pretraining: validation MCC {_num(self.pretrain_mcc)} (on HKH tiles)."]
        if (
            self.cv_pretrained
            and self.cv_scratch
            and None not in (self.cv_pretrained.mean, self.cv_scratch.mean)
        ):
            gain = self.cv_pretrained.mean - self.cv_scratch.mean
            lines.append(f"Pretraining changes the CV mean MCC by {gain:+.3f} on the same folds.")
        return lines

    def _test_section(self) -> list[str]:
        if not self.test:
            return []
        lines = [
            "",
            "## Held-out test scenes (predicted with TTA, scored against Test_labels)",
            "",
            "| model | MCC | IoU glacier | IoU debris | IoU lake |",
            "| --- | --- | --- | --- | --- |",
        ]
        for key in TEST_ROWS:
            entry = self.test.get(key)
            if entry:
                iou = entry.get("iou") or {}
                lines.append(
                    f"| {entry.get('name', key)} | {_num(entry.get('mcc'))} | {_num(iou.get('glacier'))} | "
                    f"{_num(iou.get('debris'))} | {_num(iou.get('lake'))} |"
                )
        used = [(self.test[k]["name"], self.test[k].get("calibration")) for k in TEST_ROWS if k in self.test]
        lines += ["", "Calibration used:"] + [f"- {name}: {rule or 'none'}" for name, rule in used]
        return lines

    def _decisions_section(self) -> list[str]:
        if not self.decisions:
            return []
        lines = ["", "## Decisions fitted on out-of-fold predictions (every training image once)", ""]
        for name, title in (("single", "One model per fold (CV, pretrained)"), ("ensemble", "Seed ensemble")):
            entry = self.decisions.get(name)
            if not entry:
                continue
            oof = entry["oof"]
            line = f"{title}: pooled OOF MCC {_num(oof.get('mcc'))} by argmax (TTA {oof.get('tta')})"
            if oof.get("calibrated_mcc") is not None:
                line += (
                    f", {_num(oof['calibrated_mcc'])} calibrated (cross-fitted, fold by fold: "
                    f"{_num(oof.get('cross_fitted_mcc'))}); rule: {oof.get('rule')}"
                )
            lines += [line + ".", ""]
        table = (self.decisions.get("ensemble") or {}).get("oof", {}).get("table")
        if table:
            from glacier.decisions.select import choice_words, combination_table

            oof = self.decisions["ensemble"]["oof"]
            why = f" ({choice_words(oof['choice'])})" if oof.get("choice") else ""
            lines += [combination_table(table), "", f"Chosen for the ensemble: {oof.get('chosen')}{why}."]
        return lines

    def _submission_section(self) -> list[str]:
        if not self.submission:
            return []
        s = self.submission
        verdict = "passed" if s.get("passed") else "FAILED"
        lines = ["", "## Submission", "", f"Self-check {verdict}: {s.get('summary', '')}".rstrip()]
        if s.get("projected_seconds") is not None:
            lines.append(
                f"Projected inference time on the platform's test set: {s['projected_seconds']:.1f} s "
                f"({s.get('projection_basis', 'measured here, scaled to the test set')})."
            )
        return lines

    def _timing_section(self) -> list[str]:
        lines = ["", "## Time per stage", "", "| stage | seconds |", "| --- | --- |"]
        lines += [f"| {t.stage} | {t.seconds:.1f} |" for t in self.timings]
        lines.append(f"| **total** | **{self.total_seconds:.1f}** |")
        return lines

    def _outputs_section(self) -> list[str]:
        if not self.outputs:
            return []
        lines = ["", "## Outputs", ""]
        lines += [f"- {name}: `{path}`" for name, path in self.outputs.items()]
        if self.push:
            lines.append(f"- Hub: {self.push.get('url')}")
        return lines


TEST_ROWS = ("ensemble", "ensemble_uncalibrated", "all_data", "best_single", "best_single_calibrated")


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.3f}"


def _fold(cv: CvSummary | None, fold: int) -> str:
    return _num(cv.fold_mcc.get(fold)) if cv else "n/a"


def _mean_std(cv: CvSummary | None) -> str:
    return f"{_num(cv.mean)} +/- {_num(cv.std)}" if cv else "n/a"
