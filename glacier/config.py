"""One typed configuration for every command: YAML defaults, then command-line overrides.

    cfg = load_config("competition_finetune", overrides=["training.lr=1e-4"], epochs=3)

A config is a packaged preset name (``tiny``, ``hkh_pretrain``, ...) or a YAML path; values
from ``--set section.key=value`` and the common flags are applied on top, then the whole is
validated once and frozen. Unknown keys and wrong types are ConfigErrors naming the key and
the file. The resolved config is written into every output folder (``save_config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from glacier import atomic
from glacier.domain import CLASS_NAMES
from glacier.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "configs"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Which prepared dataset, which bands, how samples are cut and loaded."""

    path: str | None = None
    """Prepared-dataset folder (``glacier preprocess`` output); ``--data`` sets it."""
    bands: list[str] | None = None
    """Bands to train on, by name; None takes all bands of the prepared dataset."""
    crop_size: int = Field(256, ge=16)
    """Random training crop (pixels); validation uses whole tiles."""
    fold: int = Field(0, ge=0)
    """Validation fold; the other folds train. ``--fold`` sets it."""
    use_all_for_training: bool = False
    """Train on every fold (no validation): for pretraining on all data or final models."""
    augment: bool = True
    """Randomly augment training crops; validation tiles are never augmented."""
    augment_backend: Literal["numpy", "albumentations"] = "numpy"
    """Spatial augmentation by glacier's numpy/OpenCV code (fast on many bands) or by an
    albumentations pipeline (glacier.data.augment.AlbumentationsAugmentation)."""
    num_workers: int = Field(2, ge=0)
    """DataLoader worker processes per training process (0 loads in the main process)."""
    min_valid_fraction: float = Field(0.0, ge=0, le=1)
    """Training tiles with a smaller share of labelled pixels are skipped."""


class ModelConfig(_Section):
    """The network: any segmentation-models-pytorch architecture, optionally boundary-aware."""

    architecture: str = "boundary_aware_unet"
    """``boundary_aware_unet`` or an smp architecture name (Unet, UnetPlusPlus, DeepLabV3Plus...)."""
    encoder: str = "resnet34"
    """Any segmentation-models-pytorch encoder name (resnet18, resnet34, efficientnet-b0...)."""
    encoder_weights: str | None = None
    """Kept None for multispectral input; a name would download ImageNet weights."""
    encoder_depth: int = Field(5, ge=3, le=5)
    """Encoder stages used; fewer stages make a smaller, faster model."""
    decoder_channels: list[int] | None = None
    """None keeps the architecture's default."""
    init_from: str | None = None
    """Model folder, ensemble member or Hub id to start from (bands matched by name)."""


class OptimizerConfig(_Section):
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    """Optimizer."""
    lr: float = Field(3e-4, gt=0)
    """Learning rate; ``--lr`` sets it."""
    weight_decay: float = Field(1e-4, ge=0)
    """Weight decay (decoupled for adamw)."""
    momentum: float = Field(0.9, ge=0)
    """Momentum (sgd only)."""


class SchedulerConfig(_Section):
    name: Literal["plateau", "cosine", "none"] = "plateau"
    """``plateau`` lowers the rate when validation MCC stalls; ``cosine`` anneals it over the epochs."""
    factor: float = Field(0.5, gt=0, lt=1)
    """Plateau: multiply the rate by this when it lowers it."""
    patience: int = Field(5, ge=0)
    """Plateau: validations without improvement before lowering the rate."""
    min_lr: float = Field(1e-6, ge=0)
    """The rate never goes below this."""
    warmup_epochs: int = Field(0, ge=0)
    """Linear warm-up of the rate over the first epochs."""


class LossConfig(_Section):
    focal_weight: float = Field(1.0, ge=0)
    """Weight of the focal loss."""
    dice_weight: float = Field(1.0, ge=0)
    """Weight of the multiclass Dice loss."""
    mcc_weight: float = Field(0.5, ge=0)
    """Weight of the differentiable MCC loss (the competition metric)."""
    boundary_weight: float = Field(0.5, ge=0)
    """Weight of the boundary head's loss (boundary-aware U-Net only)."""
    boundary_ramp: Literal["none", "linear"] = "linear"
    """How the boundary weight grows from 0 to ``boundary_weight``."""
    boundary_ramp_epochs: int = Field(10, ge=0)
    """Epochs over which the boundary weight ramps up."""
    focal_gamma: float = Field(2.0, ge=0)
    """Focusing parameter of the focal loss."""
    class_weights: list[float] | None = None
    """One weight per class, or None for equal weights."""

    @field_validator("class_weights")
    @classmethod
    def _one_per_class(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and len(value) != len(CLASS_NAMES):
            raise ValueError(f"needs {len(CLASS_NAMES)} weights ({', '.join(CLASS_NAMES)}), got {len(value)}")
        return value


class SamplerConfig(_Section):
    name: Literal["balanced", "uniform"] = "balanced"
    """``balanced`` draws tiles so rare classes reach ``target_shares``; ``uniform`` shuffles."""
    target_shares: dict[str, float] = Field(
        default_factory=lambda: {"background": 0.10, "glacier": 0.35, "debris": 0.40, "lake": 0.15}
    )
    """Expected class shares of the drawn pixels (the pixel-balanced sampler's goal)."""
    samples_per_epoch: int | None = Field(None, ge=1)
    """Samples drawn per epoch; None draws as many as there are training tiles."""

    @field_validator("target_shares")
    @classmethod
    def _known_classes(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(CLASS_NAMES))
        if unknown:
            raise ValueError(f"unknown classes {unknown}; classes are {list(CLASS_NAMES)}")
        if any(v < 0 for v in value.values()) or sum(value.values()) <= 0:
            raise ValueError("shares must be non-negative and not all zero")
        return value


class TrainingConfig(_Section):
    epochs: int = Field(50, ge=1)
    """Training epochs (each draws ``sampler.samples_per_epoch`` samples)."""
    batch_size: int = Field(8, ge=1)
    """Per process (per GPU)."""
    grad_accum_steps: int = Field(1, ge=1)
    """Batches accumulated per optimizer step: effective batch = batch_size x processes x this."""
    max_grad_norm: float | None = Field(1.0, gt=0)
    """Gradient clipping norm; None does not clip."""
    val_every: int = Field(1, ge=1)
    """Validate every N epochs."""
    early_stopping_patience: int | None = Field(None, ge=1)
    """Stop after this many validations without improvement; None never stops early."""
    seed: int = 42
    """Seed of weights, sampling and augmentation; ``--seed`` sets it."""
    max_hours: float | None = Field(None, gt=0)
    """Stop cleanly, with a state saved, before this much wall time has passed."""
    nonfinite_loss: Literal["stop", "skip"] = "stop"
    """What a NaN/inf loss does: stop with a message, or skip that step (and stop after 10)."""
    log_every: int = Field(10, ge=1)
    """Log the training loss every N steps."""
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    loss: LossConfig = LossConfig()
    sampler: SamplerConfig = SamplerConfig()


class CheckpointConfig(_Section):
    save_every: int = Field(1, ge=1)
    """Save a resumable state every N epochs."""
    save_best: bool = True
    """Keep a model folder of the best validation MCC (``RUN/best``)."""
    keep_last: int = Field(2, ge=1)
    """Resumable states kept on disk (the oldest are deleted)."""


class HubConfig(_Section):
    push_to_hub: str | None = None
    """Repo id to push the best model to at the end of the run."""
    private: bool = True
    """Create the Hub repository as private."""


class GlacierConfig(_Section):
    """The whole resolved configuration of a run."""

    name: str = "run"
    """Run name: shown in logs, model cards and the Hub."""
    out: str = "runs/run"
    """Output folder of the run; ``--out`` sets it."""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    checkpoints: CheckpointConfig = CheckpointConfig()
    hub: HubConfig = HubConfig()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def updated(self, **dotted: Any) -> GlacierConfig:
        """A validated copy with ``{"section.key": value}`` overrides applied."""
        data = self.to_dict()
        for key, value in dotted.items():
            _set_dotted(data, key, value, source="<code>")
        return _validate(data, source="<code>")


# Common command-line flags -> config keys (names kept stable for scripts and notebooks).
FLAG_KEYS: dict[str, str] = {
    "data": "data.path",
    "out": "out",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "lr": "training.optimizer.lr",
    "fold": "data.fold",
    "seed": "training.seed",
}


def preset_names() -> list[str]:
    """Names of the packaged configs (``--config NAME``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_config_path(config: str | Path) -> Path:
    """A packaged preset name or a YAML path -> an existing file."""
    path = Path(config)
    if path.is_file():
        return path
    preset = PRESET_DIR / f"{config}.yaml"
    if preset.is_file():
        return preset
    raise ConfigError(
        f"config {str(config)!r} is neither a file nor a packaged config; packaged configs: {', '.join(preset_names())}"
    )


def load_config(
    config: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    **flags: Any,
) -> GlacierConfig:
    """Load a preset or YAML file, apply ``key=value`` overrides and flags, validate, freeze.

    ``flags`` are the common options (``epochs``, ``batch_size``, ``lr``, ``fold``, ``seed``,
    ``out``, ``data``); a None flag is not applied.
    """
    source = "<defaults>"
    data: dict[str, Any] = {}
    if config is not None:
        path = resolve_config_path(config)
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"{path}: the top level must be a mapping of sections, got {type(loaded).__name__}"
            )
        data = loaded or {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: write it as section.key=value, e.g. training.lr=1e-4")
        _set_dotted(data, key.strip(), yaml.safe_load(raw) if raw.strip() else None, source=f"--set {item}")
    for flag, value in flags.items():
        if flag not in FLAG_KEYS:
            raise TypeError(f"unknown flag {flag!r}")
        if value is not None:
            _set_dotted(
                data, FLAG_KEYS[flag], str(value) if flag in ("data", "out") else value, source=f"--{flag}"
            )
    return _validate(data, source=source)


def save_config(cfg: GlacierConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic.write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> GlacierConfig:
    """Validate a plain dict (e.g. one embedded in a model's config.json)."""
    return _validate(dict(data), source=source)


def _set_dotted(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {key!r} goes through {part!r}, which is a value, not a section")
        node = child
    node[parts[-1]] = value


def _validate(data: dict[str, Any], source: str) -> GlacierConfig:
    try:
        return GlacierConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "<top level>"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key {key!r}")
            else:
                problems.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(f"{source}: invalid config: " + "; ".join(problems)) from None
