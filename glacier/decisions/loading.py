"""The models of an artifact together with the decision rule stored beside them.

    chosen = calibrated_models("runs/ensemble")                  # rule from ensemble.json
    predictor = Predictor(chosen.models, calibration=chosen.calibration, weights=chosen.weights)

A model folder keeps its rule in config.json (``_glacier.calibration``), an ensemble in
ensemble.json (``calibration``, with the members' weights); an ensemble's members' own rules
are not used (they were fitted for one model, not for the average). ``calibration=False``
(``--no-calibration``) gives the plain mean of every member's probabilities and its argmax.
Members whose fitted weight is 0 are left out: they would cost time and change nothing. A
rule whose combination is ``soup`` predicts with the members' weight average (one model);
``soup=True`` asks for that average whatever the rule, which is then not applied unless it
was fitted for a soup.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from glacier.artifacts import EnsembleFolder, ModelFolder, open_artifact
from glacier.decisions.rule import Calibration


def artifact_calibration(artifact: ModelFolder | EnsembleFolder) -> Calibration | None:
    """The decision rule stored in a model or ensemble folder (None: plain argmax)."""
    if isinstance(artifact, EnsembleFolder):
        return Calibration.from_dict(
            artifact.manifest.get("calibration"), str(artifact.path / artifact.MANIFEST)
        )
    return Calibration.from_dict(artifact.meta.calibration, str(artifact.path / ModelFolder.CONFIG))


@dataclasses.dataclass
class CalibratedModels:
    """Named members to predict with, their weights and the rule (None: plain argmax)."""

    named: list[tuple[str, Any, Any]]
    calibration: Calibration | None
    weights: list[float]
    left_out: list[str]
    """Members of the artifact left out because their fitted weight is 0."""
    souped: list[str] = dataclasses.field(default_factory=list)
    """The members the one soup model averages, by name (empty: no soup)."""

    @property
    def models(self) -> list[tuple[Any, Any]]:
        return [(model, meta) for _, model, meta in self.named]

    def describe(self) -> str:
        return (
            "none (argmax of the mean probability)"
            if self.calibration is None
            else self.calibration.describe()
        )


def calibrated_models(
    source: str | Path | ModelFolder | EnsembleFolder,
    *,
    members: Sequence[str] | None = None,
    calibration: bool = True,
    soup: bool = False,
    device: str = "cpu",
) -> CalibratedModels:
    """Load ``source`` (anything ``open_artifact`` opens) with its rule, unless ``calibration``
    is False; ``members`` picks ensemble members by name; ``soup`` averages their weights."""
    from glacier.predict.loading import load_named_models
    from glacier.predict.soup import soup_with_meta

    artifact = source if isinstance(source, (ModelFolder, EnsembleFolder)) else open_artifact(source)
    rule = artifact_calibration(artifact) if calibration else None
    if soup and rule is not None and rule.combine != "soup":
        rule = None  # fitted for the members' average, not for their soup
    soup = soup or (rule is not None and rule.combine == "soup")
    names = list(members) if members else _member_names(artifact)
    known = set(rule.weights) if rule is not None and rule.weights is not None else set(names)
    # An unknown name keeps weight 1 here: the loader below names the members there are.
    weights = {
        name: rule.member_weight(name) if rule is not None and name in known else 1.0 for name in names
    }
    kept = [name for name in names if weights[name] > 0]
    named = load_named_models(
        artifact, members=kept if members or len(kept) < len(names) else None, device=device
    )
    left_out = [n for n in names if n not in kept]
    if soup and len(named) > 1:
        model, meta = soup_with_meta([(model, meta) for _, model, meta in named])
        souped = [name for name, _, _ in named]
        return CalibratedModels([("soup", model, meta)], rule, [1.0], left_out, souped=souped)
    return CalibratedModels(named, rule, [weights.get(name, 1.0) for name, _, _ in named], left_out)


def _member_names(artifact: ModelFolder | EnsembleFolder) -> list[str]:
    return list(artifact.members()) if isinstance(artifact, EnsembleFolder) else [artifact.path.name]
