"""Prediction: tiled windows with blending, batched test-time augmentation, ensembles, soups."""

from glacier.predict.loading import band_folders_for, load_models, load_named_models
from glacier.predict.predictor import Predictor, resolve_device
from glacier.predict.scenes import predict_folder
from glacier.predict.soup import soup_models, soup_with_meta
from glacier.predict.tta import TTA_MODES, tta_probabilities

__all__ = [
    "TTA_MODES",
    "Predictor",
    "band_folders_for",
    "load_models",
    "load_named_models",
    "predict_folder",
    "resolve_device",
    "soup_models",
    "soup_with_meta",
    "tta_probabilities",
]
