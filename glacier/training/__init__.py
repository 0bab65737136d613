"""Training: the one loop (``fit``), checkpoints, cross-validation and ensembles."""

from glacier.training.cv import CVResult, run_cross_validation
from glacier.training.ensemble import EnsembleResult, train_ensemble
from glacier.training.loop import RunResult, fit, train_step, validate

__all__ = [
    "CVResult",
    "EnsembleResult",
    "RunResult",
    "fit",
    "run_cross_validation",
    "train_ensemble",
    "train_step",
    "validate",
]
