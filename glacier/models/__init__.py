"""Models: the factory and band transfer; model folders are ``glacier.artifacts.ModelFolder``.

``save_model_folder`` / ``load_model_folder`` are kept here because the training loop and
many tests call them by these names.
"""

from glacier.artifacts.model import load_model_folder, save_model_folder
from glacier.models.factory import (
    BOUNDARY_AWARE_UNET,
    BoundaryHead,
    GlacierModel,
    build_from_arch_config,
    build_model,
    inference_state_dict,
    smp_config,
    smp_init_kwargs,
)
from glacier.models.transfer import first_conv_key, transfer_weights

__all__ = [
    "BOUNDARY_AWARE_UNET",
    "BoundaryHead",
    "GlacierModel",
    "build_from_arch_config",
    "build_model",
    "first_conv_key",
    "inference_state_dict",
    "load_model_folder",
    "save_model_folder",
    "smp_config",
    "smp_init_kwargs",
    "transfer_weights",
]
