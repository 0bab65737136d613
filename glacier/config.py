"""One typed configuration for every command: presets, then command-line overrides.

    cfg = load_config("competition_finetune", overrides=["training.optimizer.lr=1e-4"], epochs=3)

A config is a packaged preset name (``tiny``, ``hkh_pretrain``, ...) or a YAML path. A preset
may start from another one, ``base: competition_finetune`` (a packaged preset, or a path
relative to the preset file), and list only what differs: sections merge key by key, a
value replaces the base's value. Then ``--set section.key=value`` overrides and the common
flags are applied on top, and the whole is validated once, strictly typed (``true`` is not
a number, ``"3"`` is not an int), and frozen. Unknown keys and wrong types are ConfigErrors
naming the key and where it was written: the file, the ``--set`` or the flag. The resolved
config (complete, with no ``base``) is written into every output folder (``save_config``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from glacier import atomic
from glacier.domain import CLASS_NAMES
from glacier.errors import ConfigError
from glacier.options import TTA_MODES

PRESET_DIR = Path(__file__).parent / "configs"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")


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
    fold_split: Literal["prepared", "seed"] = "prepared"
    """``prepared``: the prepared dataset's folds (preprocess's split). ``seed``: the same
    images re-split into as many stratified folds with ``training.seed`` (repeated K-fold), so
    that ensemble members of different seeds differ in their training images, not only in
    their seed; out-of-fold predictions stay out-of-fold per seed."""
    use_all_for_training: bool = False
    """Train on every fold (no validation): for pretraining on all data or final models."""
    augment: bool = True
    """Randomly augment training crops; validation tiles are never augmented."""
    augment_level: Literal["region", "basic"] = "region"
    """``region``: geometry, raw-unit gain/offset, noise, blur and coarse dropout, for a test
    region the model never saw; ``basic``: flips, rotations, a mild warp and band noise only
    (numpy backend)."""
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
    """``imagenet`` starts the encoder from smp's ImageNet weights, its first convolution
    adapted by smp to any number of bands (downloaded once into the Hugging Face cache,
    ``HF_HOME``; offline, place them there first). None starts from random weights."""
    encoder_depth: int = Field(5, ge=3, le=5)
    """Encoder stages used; fewer stages make a smaller, faster model."""
    decoder_channels: list[int] | None = None
    """None keeps the architecture's default."""
    init_from: str | None = None
    """Model folder, ensemble member or Hub id to start from (bands matched by name)."""
    reinit_head: bool = True
    """After ``init_from``: re-initialise the segmentation head (the last, per-class layer),
    keeping the transferred encoder, decoder and boundary head. HKH labels have no lake, so a
    transferred head has learnt never to predict one."""


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
    name: Literal["plateau", "cosine", "none"] = "cosine"
    """``cosine`` anneals the rate to ``min_lr`` over every optimizer step of the run (after
    the warm-up); ``plateau`` lowers it when validation MCC stalls; ``none`` keeps it."""
    factor: float = Field(0.5, gt=0, lt=1)
    """Plateau: multiply the rate by this when it lowers it."""
    patience: int = Field(5, ge=0)
    """Plateau: validations without improvement before lowering the rate."""
    min_lr: float = Field(1e-6, ge=0)
    """The rate never goes below this."""
    warmup_epochs: int = Field(0, ge=0)
    """Linear warm-up of the rate over the first epochs (``warmup_steps`` replaces it when > 0)."""
    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up of the rate over the first optimizer steps."""


class LossConfig(_Section):
    """The recipe's loss by default (issue 13): cross-entropy (focal with gamma 0) + 0.5 Dice
    + 0.2 boundary, no MCC term; every preset but ``tiny`` (see its file) trains with it."""

    focal_weight: float = Field(1.0, ge=0)
    """Weight of the focal loss."""
    dice_weight: float = Field(0.5, ge=0)
    """Weight of the multiclass Dice loss."""
    mcc_weight: float = Field(0.0, ge=0)
    """Weight of the differentiable MCC loss (the competition metric)."""
    boundary_weight: float = Field(0.2, ge=0)
    """Weight of the boundary head's loss (boundary-aware U-Net only)."""
    boundary_ramp: Literal["none", "linear"] = "none"
    """How the boundary weight grows from 0 to ``boundary_weight``."""
    boundary_ramp_epochs: int = Field(10, ge=0)
    """Epochs over which the boundary weight ramps up (``boundary_ramp: linear``)."""
    focal_gamma: float = Field(0.0, ge=0)
    """Focusing parameter of the focal loss (0: plain cross-entropy)."""
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
    """``balanced`` draws tiles so rare classes approach ``target_shares``; ``uniform`` shuffles."""
    target_shares: dict[str, float] = Field(
        default_factory=lambda: {"background": 0.50, "glacier": 0.30, "debris": 0.20, "lake": 0.0}
    )
    """Class shares of the drawn pixels the balanced sampler aims at, within ``max_weight``.
    Debris moves MCC most; lake, a few pixels in a few images, hardly at all."""
    max_weight: float = Field(3.0, ge=1)
    """No tile is drawn more often than this many times its uniform share (1/N): the
    sampler cannot collapse onto a few images (its effective sample size stays >= N / this)."""
    uniform_mix: float = Field(0.5, ge=0, le=1)
    """Share of the draws made uniformly over the tiles (the rest balanced)."""
    rare_crop_p: float = Field(0.3, ge=0, le=1)
    """Share of training crops centred on a pixel of one of ``rare_crop_classes`` (the
    rarest of them present in the tile; a tile without any gets a random crop)."""
    rare_crop_classes: list[str] = Field(default_factory=lambda: ["debris"])
    """Classes a centred crop may centre on."""
    prior_correction: bool = True
    """Model folders carry the decision rule that takes the drawn class shares back out
    (log-biases ``log(training share / drawn share)``: glacier/decisions/prior.py), so that
    oversampling debris does not become over-predicting it; a rule fitted on out-of-fold
    predictions replaces it. ``glacier predict --no-calibration`` ignores either."""
    samples_per_epoch: int | None = Field(None, ge=1)
    """Samples drawn per epoch (an epoch is what validation and states count in); None draws
    as many as there are training tiles."""

    @field_validator("rare_crop_classes")
    @classmethod
    def _known_crop_classes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CLASS_NAMES))
        if unknown:
            raise ValueError(f"unknown classes {unknown}; classes are {list(CLASS_NAMES)}")
        return value

    @field_validator("target_shares")
    @classmethod
    def _known_classes(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(CLASS_NAMES))
        if unknown:
            raise ValueError(f"unknown classes {unknown}; classes are {list(CLASS_NAMES)}")
        if any(v < 0 for v in value.values()) or sum(value.values()) <= 0:
            raise ValueError("shares must be non-negative and not all zero")
        return value


class EmaConfig(_Section):
    """The exponential moving average of the weights: validated and saved as the model."""

    enabled: bool = True
    """Keep an exponential moving average of the weights (timm's ``ModelEmaV2``, its decay warmed up as timm's ``ModelEmaV3`` does), updated
    after every optimizer step; it is what is validated and saved as the model."""
    decay: float = Field(0.999, gt=0, lt=1)
    """Largest decay; early steps use less (``1 - (1 + step) ** -warmup_power``)."""
    warmup_power: float = Field(0.75, gt=0)
    """Decay warm-up: 0.75 reaches 0.99 after about 460 steps and 0.999 after about 10,000."""


class TrainingConfig(_Section):
    """How long and how a run trains: length, batches, optimizer, schedule, loss, sampler, EMA."""

    steps: int | None = Field(None, ge=1)
    """Optimizer-step budget; the epochs follow (rounded up to whole epochs of
    ``sampler.samples_per_epoch`` samples). ``epochs`` (or ``--epochs``), when given, wins."""
    epochs: int | None = Field(None, ge=1)
    """Training epochs; None trains for ``steps`` (50 epochs when neither is given)."""
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
    """Stop cleanly, with a state saved, before this much wall time has passed (counted from
    the notebook session's start where the set-up recorded one: glacier/session.py)."""
    nonfinite_loss: Literal["stop", "skip"] = "stop"
    """What a NaN/inf loss does: stop with a message, or skip that step (and stop after 10)."""
    log_every: int = Field(10, ge=1)
    """Log the training loss every N steps."""
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    loss: LossConfig = LossConfig()
    sampler: SamplerConfig = SamplerConfig()
    ema: EmaConfig = EmaConfig()


class CheckpointConfig(_Section):
    save_every: int = Field(1, ge=1)
    """Save a resumable state every N epochs."""
    save_best: bool = True
    """Keep a model folder of the selected model (``RUN/best``; ``select`` says which)."""
    select: Literal["best", "last"] = "best"
    """The model a validated run hands on as ``RUN/best`` (what its out-of-fold predictions,
    ensembles, prediction and the all-data length rule use): ``best``, the epoch of the best
    validation MCC; ``last``, the end of the run (the schedule's end, or where it stopped).
    On a handful of validation images the best epoch is partly noise, and the pick is scored
    on the images that chose it: the fine-tuning presets use ``last`` (docs/benchmarks.md)."""
    keep_last: int = Field(2, ge=1)
    """Resumable states kept on disk (the oldest are deleted)."""


class OofConfig(_Section):
    """Out-of-fold predictions of cross-validation folds and ensemble members (``RUN/oof/``):
    what calibration and ensemble selection are fitted on."""

    write: bool = True
    """After a run that validates on a fold, predict its validation tiles with the model it hands on."""
    tta: Literal[TTA_MODES] = "flip"
    """Test-time augmentation of those predictions: use the one the submission will use."""


class HubConfig(_Section):
    push_to_hub: str | None = None
    """Repo id to push the best model to at the end of the run."""
    private: bool = True
    """Create the Hub repository as private."""


class GlacierConfig(_Section):
    """The whole resolved configuration of a run."""

    name: str = "run"
    """Run name: shown in logs, model cards and the Hub; one safe file name (it names the
    TensorBoard folder): letters, digits and ``_ . + -``, starting with a letter or digit."""
    out: str = "runs/run"
    """Output folder of the run; ``--out`` sets it."""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    checkpoints: CheckpointConfig = CheckpointConfig()
    oof: OofConfig = OofConfig()
    hub: HubConfig = HubConfig()

    @field_validator("name")
    @classmethod
    def _one_file_name(cls, value: str) -> str:
        if not _SAFE_NAME.fullmatch(value):
            raise ValueError(
                "must be one file name of letters, digits and _ . + - (it names the run's log folder), "
                "e.g. my_run-2"
            )
        return value

    @property
    def fold_split_seed(self) -> int | None:
        """The seed of the fold split this run trains and validates on (``data.fold_split``)."""
        return fold_split_seed(self.data.fold_split, self.training.seed)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def updated(self, **dotted: Any) -> GlacierConfig:
        """A validated copy with ``{"section.key": value}`` overrides applied (Python values,
        validated like pydantic's defaults rather than strictly)."""
        layers = [_Layer("<code>", self.to_dict())]
        layers += [_Layer("<code>", _nested(key, value, "<code>")) for key, value in dotted.items()]
        return _resolve(layers, strict=False)


def fold_split_seed(fold_split: str, training_seed: int) -> int | None:
    """None for the prepared dataset's folds, else the seed its images are re-split with."""
    return int(training_seed) if fold_split == "seed" else None


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


BASE_KEY = "base"
"""The key by which a preset names the preset it starts from."""
OVERRIDE_EXAMPLE = "training.optimizer.lr=1e-4"
"""The ``--set`` example the error hints show (a test checks that it is accepted)."""


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-4`` as a number as YAML 1.2 does (YAML 1.1 and so
    plain PyYAML read it as a string, which strict typing would reject)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclass(frozen=True)
class _Layer:
    """Config values written in one place (a preset file, one ``--set``, one flag), nested
    like the config; ``source`` is what errors name."""

    source: str
    values: dict[str, Any]


def preset_names() -> list[str]:
    """Names of the packaged configs (``--config NAME``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_config_path(config: str | Path) -> Path:
    """A packaged preset name or a YAML path -> an existing file."""
    path = _config_file(config)
    if path is None:
        raise ConfigError(
            f"config {str(config)!r} is neither a file nor a packaged config; "
            f"packaged configs: {', '.join(preset_names())}"
        )
    return path


def preset_chain(config: str | Path) -> list[Path]:
    """The files a config is built from: its deepest ``base`` first, the config itself last."""
    return [Path(layer.source) for layer in _preset_layers(config)]


def load_config(
    config: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    **flags: Any,
) -> GlacierConfig:
    """Load a preset or YAML file (with its bases), apply ``key=value`` overrides and flags,
    validate strictly, freeze.

    ``flags`` are the common options (``epochs``, ``batch_size``, ``lr``, ``fold``, ``seed``,
    ``out``, ``data``); a None flag is not applied.
    """
    layers = _preset_layers(config) if config is not None else []
    layers += [_override_layer(item) for item in overrides]
    layers += _flag_layers(flags)
    return _resolve(layers, strict=True)


def save_config(cfg: GlacierConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic.write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


# ------------------------------------------------------------------------ preset files
def _preset_layers(config: str | Path) -> list[_Layer]:
    """One layer per file of the preset's chain, deepest base first, without their ``base`` keys."""
    path = resolve_config_path(config)
    layers: list[_Layer] = []
    while True:
        if any(Path(layer.source).resolve() == path.resolve() for layer in layers):
            cycle = " -> ".join(Path(layer.source).name for layer in reversed(layers))
            raise ConfigError(f"{layers[0].source}: presets inherit in a cycle: {cycle} -> {path.name}")
        values = _read_mapping(path)
        base = values.pop(BASE_KEY, None)
        layers.insert(0, _Layer(str(path), values))
        if base is None:
            return layers
        path = _resolve_base(path, base)


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(loaded).__name__}")
    return loaded or {}


def _resolve_base(path: Path, base: Any) -> Path:
    """A preset's ``base``: a file relative to the preset, else a packaged preset name."""
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{path}: {BASE_KEY} must be a packaged preset name or a YAML path, got {base!r}")
    found = _config_file(base, beside=path.parent)
    if found is None:
        raise ConfigError(
            f"{path}: {BASE_KEY} {base!r} is neither a file ({path.parent / base}) nor a packaged preset "
            f"({', '.join(preset_names())})"
        )
    return found


def _config_file(config: str | Path, beside: Path = Path()) -> Path | None:
    """``config`` as a file (relative to ``beside``), else as a packaged preset name."""
    for path in (beside / config, PRESET_DIR / f"{config}.yaml"):
        if path.is_file():
            return path
    return None


# -------------------------------------------------------------------- overrides, flags
def _override_layer(item: str) -> _Layer:
    """``--set section.key=value``: the value is YAML (``3``, ``1e-4``, ``true``, ``[1, 2]``, ``null``)."""
    key, sep, raw = item.partition("=")
    key, source = key.strip(), f"--set {item}"
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: write it as section.key=value, e.g. {OVERRIDE_EXAMPLE}")
    if not raw.strip():
        return _Layer(source, _nested(key, None, source))
    try:
        value = yaml.load(raw, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{source}: {raw!r} is not a valid YAML value ({problem}); quote a text that holds "
            "YAML punctuation, e.g. --set name='\"a: b\"'"
        ) from None
    return _Layer(source, _nested(key, value, source))


def _flag_layers(flags: dict[str, Any]) -> list[_Layer]:
    layers = []
    for flag, value in flags.items():
        if flag not in FLAG_KEYS:
            raise TypeError(f"unknown flag {flag!r}")
        if value is not None:
            source = f"--{flag.replace('_', '-')}"
            value = str(value) if flag in ("data", "out") else value
            layers.append(_Layer(source, _nested(FLAG_KEYS[flag], value, source)))
    return layers


def _nested(key: str, value: Any, source: str) -> dict[str, Any]:
    """``"a.b.c"`` and a value -> ``{"a": {"b": {"c": value}}}``; the key may pass through
    sections only, not through a value such as ``training.epochs``."""
    parts = key.split(".")
    section: type[BaseModel] | None = GlacierConfig
    for depth, part in enumerate(parts[:-1]):
        field = section.model_fields.get(part) if section is not None else None
        section = _section_type(field)
        if field is not None and section is None:
            whole = ".".join(parts[: depth + 1])
            raise ConfigError(
                f"{source}: {key!r} goes through {part!r}, which is a value, not a section; "
                f"set the whole value instead ({whole}=...)"
            )
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


# -------------------------------------------------------------------- merge, validate
def _resolve(layers: list[_Layer], strict: bool) -> GlacierConfig:
    """Merge the layers in order (later ones win, sections key by key) and validate once."""
    data: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer in layers:
        unknown = _merge(data, layer.values, GlacierConfig, layer.source, origins)
        if unknown:
            raise ConfigError(f"{layer.source}: invalid config: " + "; ".join(unknown))
    return _validate(data, origins, strict)


def _section_type(field: Any) -> type[BaseModel] | None:
    annotation = getattr(field, "annotation", None)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _merge(
    data: dict[str, Any],
    values: dict[str, Any],
    section: type[BaseModel],
    source: str,
    origins: dict[str, str],
    prefix: str = "",
) -> list[str]:
    """Merge ``values`` into ``data`` along the schema's sections, noting in ``origins`` where
    each key was written; returns a message for each key the schema does not have."""
    unknown = []
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        field = section.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            unknown.append(_unknown_key(dotted))
            continue
        sub = _section_type(field)
        if sub is not None and isinstance(value, dict):
            if not isinstance(data.get(key), dict):
                data[key] = {}
            unknown += _merge(data[key], value, sub, source, origins, f"{dotted}.")
        else:
            data[key] = value
            origins.pop(dotted, None)  # re-inserted last: the latest writer of a key comes last
            origins[dotted] = source
    return unknown


def _leaf_keys(section: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in section.model_fields.items():
        sub = _section_type(field)
        keys += _leaf_keys(sub, f"{prefix}{name}.") if sub is not None else [f"{prefix}{name}"]
    return keys


def _unknown_key(dotted: str) -> str:
    """The message for a key the schema lacks, naming the keys it may mean (``training.lr``
    -> ``training.optimizer.lr``: the same last part, or else the closest spelling)."""
    keys = _leaf_keys(GlacierConfig)
    last = dotted.rsplit(".", 1)[-1]
    guesses = [k for k in keys if k.rsplit(".", 1)[-1] == last] or difflib.get_close_matches(
        dotted, keys, n=1
    )
    hint = f" (did you mean {' or '.join(repr(g) for g in guesses[:2])}?)" if guesses else ""
    return f"unknown key {dotted!r}{hint}"


def _origin(key: str, origins: dict[str, str]) -> str:
    """Where ``key`` (or the value holding it, or the last key written in it) was written."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        source = origins.get(".".join(parts[:n]))
        if source is not None:
            return source
    inside = [source for written, source in origins.items() if written.startswith(f"{key}.")]
    return inside[-1] if inside else "<defaults>"


def _validate(data: dict[str, Any], origins: dict[str, str], strict: bool) -> GlacierConfig:
    try:
        return GlacierConfig.model_validate(data, strict=strict)
    except ValidationError as exc:
        problems: dict[str, list[str]] = {}
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "<top level>"
            problems.setdefault(_origin(key, origins), []).append(
                f"{key}: {err['msg']} (got {err.get('input')!r})"
            )
        raise ConfigError(
            "; ".join(f"{source}: invalid config: " + "; ".join(items) for source, items in problems.items())
        ) from None
