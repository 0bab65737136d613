"""Models or ensembles -> class probabilities -> masks, for scenes of any size.

    predictor = Predictor(load_models("runs/ensemble"), tta="flip", device="auto")
    probs = predictor.predict_probabilities(image)   # raw (C, H, W) float32 -> (K, H, W)
    mask = predictor.predict_mask(image)             # uint8 0/85/170/255

Each member normalises the raw image with its own statistics (never recomputed from the
input), runs with test-time augmentation in one batched forward per window batch, and the
members' softmax probabilities are averaged (a probability ensemble). With a
``calibration`` (glacier/decisions/rule.py, fitted on out-of-fold predictions) the members
are combined and the mask decided by that rule instead, with the members' ``weights``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from glacier.data.fill import background_at_fill, mark_fill
from glacier.domain import index_to_encoded
from glacier.errors import ConfigError, DataError, ModelError
from glacier.normalization import BandStats, normalize
from glacier.predict.tiling import blend_weights, check_overlap, check_tile_size, pad_to_multiple, tile_starts
from glacier.predict.tta import check_tta, tta_probabilities


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is a clear error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    return resolved


def member_stats(model: Any, meta: Any) -> BandStats:
    """The normalisation statistics a member was trained with, in its input-band order."""
    stats = getattr(meta, "normalization", None)
    if stats is None:
        raise ModelError(
            "model metadata has no normalisation statistics; was it saved with save_model_folder?"
        )
    return stats.select(tuple(model.bands))


class Predictor:
    """Probability-averaging predictor over one or more models (an ensemble) with TTA.

    ``models`` is a list of ``(GlacierModel, meta)`` pairs (``load_models`` returns it);
    every member must take the same bands. ``tile_size`` None predicts each scene in one
    window; otherwise larger scenes are cut into overlapping windows of that size (rounded
    down to a multiple of the network stride) and blended. ``batch_size`` counts windows per
    forward, before TTA multiplies them.
    """

    def __init__(
        self,
        models: Sequence[tuple[Any, Any]],
        tta: str = "none",
        device: str | torch.device = "auto",
        tile_size: int | None = 512,
        overlap: float = 0.25,
        batch_size: int = 4,
        amp: bool = True,
        calibration: Any = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        if not models:
            raise ModelError("no models to predict with")
        self.calibration = calibration
        self.weights = [1.0] * len(models) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(models):
            raise ModelError(f"{len(self.weights)} weights for {len(models)} models")
        self.device = resolve_device(device)
        self.tta = check_tta(tta)
        self.overlap = check_overlap(overlap)
        self.batch_size = max(1, int(batch_size))
        self.bands = tuple(models[0][0].bands)
        for model, _ in models:
            if tuple(model.bands) != self.bands:
                raise ModelError(
                    f"ensemble members take different bands: {list(self.bands)} and {list(model.bands)}; "
                    "every member must take the same bands in the same order"
                )
        self.num_classes = int(models[0][0].num_classes)
        self.members = [(model.to(self.device).eval(), member_stats(model, meta)) for model, meta in models]
        self.stride = max(int(model.stride) for model, _ in self.members)
        self.tile_size = check_tile_size(tile_size, self.stride)
        self.amp = amp and self.device.type == "cuda"

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def _window_probabilities(self, model: torch.nn.Module, windows: np.ndarray) -> torch.Tensor:
        """(N, C, h, w) normalised windows -> (N, K, h, w) float32 probabilities on the CPU."""
        x = torch.from_numpy(np.ascontiguousarray(windows)).to(self.device, non_blocking=True)
        with torch.inference_mode(), self._autocast():
            probs = tta_probabilities(model, x, self.tta)
        return probs.float().cpu()

    def _member_probabilities(self, model: torch.nn.Module, image: np.ndarray) -> torch.Tensor:
        """One member's (K, H, W) probabilities for a normalised (C, H, W) image."""
        height, width = image.shape[-2:]
        padded = pad_to_multiple(image, self.stride)
        full_h, full_w = padded.shape[-2:]
        if self.tile_size is None or (full_h <= self.tile_size and full_w <= self.tile_size):
            return self._window_probabilities(model, padded[None])[0, :, :height, :width]

        tile_h, tile_w = min(self.tile_size, full_h), min(self.tile_size, full_w)
        corners = [
            (y, x)
            for y in tile_starts(full_h, tile_h, self.overlap)
            for x in tile_starts(full_w, tile_w, self.overlap)
        ]
        weights = torch.from_numpy(blend_weights(tile_h, tile_w))
        total = torch.zeros((self.num_classes, full_h, full_w), dtype=torch.float32)
        weight_sum = torch.zeros((full_h, full_w), dtype=torch.float32)
        for start in range(0, len(corners), self.batch_size):
            chunk = corners[start : start + self.batch_size]
            windows = np.stack([padded[:, y : y + tile_h, x : x + tile_w] for y, x in chunk])
            probs = self._window_probabilities(model, windows)
            for (y, x), window_probs in zip(chunk, probs, strict=True):
                total[:, y : y + tile_h, x : x + tile_w] += window_probs * weights
                weight_sum[y : y + tile_h, x : x + tile_w] += weights
        return (total / weight_sum)[:, :height, :width]

    def predict_probabilities(self, image: np.ndarray) -> np.ndarray:
        """Raw (C, H, W) image (bands in ``self.bands`` order) -> float32 (K, H, W) probabilities.

        Fill pixels (``glacier.data.fill``) enter the model as 0 in every band, as in training.
        """
        image = mark_fill(np.array(image, dtype=np.float32))
        if image.ndim != 3 or image.shape[0] != len(self.bands):
            raise DataError(
                f"image of shape {tuple(image.shape)} does not fit the model: it takes "
                f"{len(self.bands)} bands {list(self.bands)} as (C, H, W)"
            )
        normalised: dict[BandStats, np.ndarray] = {}
        total, rule = None, self.calibration
        # Members are summed in their listed order (the submission script does the same).
        for (model, stats), weight in zip(self.members, self.weights, strict=True):
            if stats not in normalised:
                normalised[stats] = normalize(image, stats)
            probs = self._member_probabilities(model, normalised[stats])
            if rule is not None:
                total = rule.add_member(total, probs.numpy(), weight)
            else:
                total = probs if total is None else total + probs
        if rule is not None:
            return rule.combined(total, float(sum(self.weights)))
        return (total / len(self.members)).numpy()

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """(K, H, W) probabilities from ``predict_probabilities`` -> uint8 class indices."""
        if self.calibration is not None:
            return self.calibration.decide(probs)
        return probs.argmax(axis=0).astype(np.uint8)

    def predict_mask(self, image: np.ndarray, encoded: bool = True) -> np.ndarray:
        """Raw (C, H, W) image -> uint8 (H, W) mask: 0/85/170/255, or class indices 0..3.

        Fill pixels of the image (``glacier.data.fill``) are background, whatever the model says.
        """
        indices = background_at_fill(self.decide(self.predict_probabilities(image)), image)
        return index_to_encoded(indices) if encoded else indices
