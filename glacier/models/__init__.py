"""Models: the factory, band transfer and self-describing model folders."""

from glacier.model_meta import ModelMeta, is_model_folder, read_model_meta
from glacier.models.factory import (
    BOUNDARY_AWARE_UNET,
    BoundaryHead,
    GlacierModel,
    build_from_arch_config,
    build_model,
)
from glacier.models.folder import (
    inference_state_dict,
    load_model_folder,
    model_config_dict,
    save_model_folder,
)
from glacier.models.transfer import first_conv_key, transfer_weights

__all__ = [
    "BOUNDARY_AWARE_UNET",
    "BoundaryHead",
    "GlacierModel",
    "ModelMeta",
    "build_from_arch_config",
    "build_model",
    "first_conv_key",
    "inference_state_dict",
    "is_model_folder",
    "load_model_folder",
    "model_config_dict",
    "read_model_meta",
    "save_model_folder",
    "transfer_weights",
]
