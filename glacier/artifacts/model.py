"""The model folder: a trained model that describes itself, loadable by glacier and by smp.

    MODEL_DIR/
      config.json                 smp's config + glacier's "_glacier" block (model_config.py)
      model.safetensors           the plain smp network: keys exactly as ``net.state_dict()``
      boundary_head.safetensors   the training-only boundary head (boundary-aware models)
      README.md                   the model card (card.py)

``smp.from_pretrained(MODEL_DIR)`` rebuilds the network; ``ModelFolder(MODEL_DIR).load()``
rebuilds the whole ``GlacierModel``. Reading the metadata (``.meta``, ``verify()``) imports
no torch; loading and writing weights import it when called. Folders are written
atomically. Version-1 folders (``net.*`` and ``boundary_head.*`` in one weights file) load
as well.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glacier import atomic
from glacier.artifacts.model_config import GLACIER_KEY, ModelMeta, build_config, config_version, parse_config
from glacier.domain import CLASS_NAMES, CLASS_VALUES
from glacier.errors import ConfigError, ModelError
from glacier.normalization import BandStats

if TYPE_CHECKING:
    import torch

    from glacier.models.factory import GlacierModel

_V1_NET_PREFIX = "net."
_V1_HEAD_PREFIX = "boundary_head."


class ModelFolder:
    """One trained model on disk (see the module docstring for its files)."""

    kind = "model"
    CONFIG = "config.json"
    WEIGHTS = "model.safetensors"
    BOUNDARY_HEAD = "boundary_head.safetensors"
    CARD = "README.md"

    def __init__(
        self,
        path: str | Path,
        *,
        run_dir: Path | None = None,
        repo_id: str | None = None,
        revision: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.run_dir = run_dir
        """The run folder this model is the best of, when it was opened through one."""
        self.repo_id = repo_id
        """The Hub repo it was pulled from (``path`` is then the cached snapshot)."""
        self.revision = revision
        self._meta: ModelMeta | None = None

    def __repr__(self) -> str:
        return f"ModelFolder({str(self.path)!r})"

    @classmethod
    def found_at(cls, path: str | Path) -> bool:
        """True if ``path`` holds a glacier model's config.json (any format version); a
        ModelError when it does but its format_version is not an integer."""
        config_path = Path(path) / cls.CONFIG
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return config_version(config, config_path) is not None

    @property
    def meta(self) -> ModelMeta:
        """The checked metadata (``verify()``, read once)."""
        if self._meta is None:
            self._meta = self.verify()
        return self._meta

    def verify(self) -> ModelMeta:
        """Check the folder's files and config.json; a ModelError says which file and what to do."""
        folder, config_path = self.path, self.path / self.CONFIG
        if not folder.is_dir():
            raise ModelError(f"{folder}: model folder not found")
        if not config_path.is_file():
            raise ModelError(
                f"{config_path}: missing; is {folder} a model folder (glacier finetune writes one)?"
            )
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{config_path}: not valid JSON ({exc}); the model folder is damaged") from None
        meta = parse_config(config, config_path)
        for name in self._weight_names(meta):
            if not (folder / name).is_file():
                raise ModelError(
                    f"{folder / name}: missing; the model folder is incomplete (copy the whole folder)"
                )
        return meta

    def files(self) -> dict[str, Path]:
        """The folder's files that describe the model (config and weights; not the card)."""
        return {name: self.path / name for name in (self.CONFIG, *self._weight_names(self.meta))}

    def _weight_names(self, meta: ModelMeta) -> tuple[str, ...]:
        if meta.format_version >= 2 and meta.arch_config["boundary_head"]:
            return (self.WEIGHTS, self.BOUNDARY_HEAD)
        return (self.WEIGHTS,)

    def card(self, **kwargs: Any) -> str:
        """The model card (README.md text); ``kwargs`` as ``card.render_card`` takes them."""
        from glacier.artifacts.card import render_card

        return render_card(self.meta, **kwargs)

    # ------------------------------------------------------------------ weights
    def load(self, device: str | torch.device = "cpu") -> tuple[GlacierModel, ModelMeta]:
        """Rebuild the model from config.json, load its weights; ``(model, meta)``, eval mode."""
        from glacier.models.factory import build_from_arch_config

        meta = self.meta
        try:
            model = build_from_arch_config(meta.arch_config, meta.bands)
        except ConfigError as exc:
            raise ModelError(f"{self.path / self.CONFIG}: {exc}") from None
        net_state, head_state, head_path = self._read_states(meta)
        _load_strict(model.net, net_state, self.path / self.WEIGHTS)
        if model.boundary_head is not None or head_state:
            _load_strict(model.boundary_head, head_state, head_path)
        return model.to(device).eval(), meta

    def _read_states(self, meta: ModelMeta) -> tuple[dict, dict, Path]:
        """(network state, boundary-head state, the head's file); version 1 kept both in one file."""
        weights = self.path / self.WEIGHTS
        if meta.format_version == 1:
            state = _read_weights(weights)
            return _strip(state, _V1_NET_PREFIX), _strip(state, _V1_HEAD_PREFIX), weights
        head_path = self.path / self.BOUNDARY_HEAD
        head_state = _read_weights(head_path) if meta.arch_config["boundary_head"] else {}
        return _read_weights(weights), head_state, head_path

    @classmethod
    def write(
        cls,
        model: GlacierModel,
        path: str | Path,
        *,
        normalization: BandStats,
        metrics: dict | None = None,
        training: dict | None = None,
        sensor_bands: Sequence[str] | None = None,
        calibration: dict | None = None,
        card: str | None = None,
    ) -> ModelFolder:
        """Write ``model`` as a model folder at ``path``, atomically (an existing one is replaced).

        ``training`` is the resolved config plus provenance; ``card`` overrides the generated
        model card.
        """
        from safetensors.torch import save_file

        from glacier.models.factory import smp_config

        num_classes = model.num_classes
        config = build_config(
            smp_config(model),
            boundary_head=model.boundary_head is not None,
            bands=model.bands,
            sensor_bands=tuple(sensor_bands) if sensor_bands is not None else None,
            classes=CLASS_NAMES[:num_classes],
            class_values=CLASS_VALUES[:num_classes],
            normalization=normalization,
            metrics=metrics,
            training=training,
            calibration=calibration,
        )
        folder = cls(path)
        folder._meta = parse_config(config, folder.path / cls.CONFIG)
        with atomic.atomic_dir(folder.path) as tmp:
            # "pt" is the metadata PyTorch loaders of safetensors files expect.
            save_file(_cpu_state(model.net), str(tmp / cls.WEIGHTS), metadata={"format": "pt"})
            if model.boundary_head is not None:
                save_file(
                    _cpu_state(model.boundary_head), str(tmp / cls.BOUNDARY_HEAD), metadata={"format": "pt"}
                )
            atomic.write_json(tmp / cls.CONFIG, config)
            atomic.write_text(tmp / cls.CARD, card if card is not None else folder.card())
        return folder

    def write_calibration(self, calibration: dict | None) -> None:
        """Set (or, with None, clear) the decision calibration in config.json, atomically;
        the weights are not touched (glacier/decisions/rule.py: what it holds)."""
        config_path = self.path / self.CONFIG
        if self.meta.format_version < 2:
            raise ModelError(
                f"{self.path}: a version-1 model folder; upgrade it first (ModelFolder.upgrade_to)"
            )
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config[GLACIER_KEY]["calibration"] = calibration
        self._meta = parse_config(config, config_path)
        atomic.write_json(config_path, config)

    def upgrade_to(self, path: str | Path) -> ModelFolder:
        """This model written anew at ``path`` in the current format (e.g. a version-1 folder)."""
        model, meta = self.load()
        return self.write(
            model,
            path,
            normalization=meta.normalization,
            metrics=meta.metrics,
            training=meta.training,
            sensor_bands=meta.sensor_bands,
            calibration=meta.calibration,
        )


def save_model_folder(
    model: GlacierModel,
    folder: str | Path,
    *,
    normalization: BandStats,
    metrics: dict | None = None,
    training: dict | None = None,
    sensor_bands: Sequence[str] | None = None,
    calibration: dict | None = None,
    card: str | None = None,
) -> Path:
    """Write ``model`` as a model folder (``ModelFolder.write``); returns the folder's path."""
    written = ModelFolder.write(
        model,
        folder,
        normalization=normalization,
        metrics=metrics,
        training=training,
        sensor_bands=sensor_bands,
        calibration=calibration,
        card=card,
    )
    return written.path


def load_model_folder(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[GlacierModel, ModelMeta]:
    """``(model, meta)`` of a model folder (``ModelFolder.load``), the model in eval mode."""
    return ModelFolder(folder).load(device)


def _cpu_state(module: Any) -> dict[str, Any]:
    # safetensors wants contiguous CPU tensors; detach so a model mid-training can be saved.
    return {key: value.detach().to("cpu").contiguous() for key, value in module.state_dict().items()}


def _strip(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


def _read_weights(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the weights ({exc}); is the file truncated?") from None


def _load_strict(module: Any, state: dict[str, Any], path: Path) -> None:
    if module is None:
        raise ModelError(f"{path}: holds boundary-head weights, but config.json says the model has none")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit the architecture in config.json ({exc})") from None
