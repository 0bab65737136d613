"""A fresh segmentation head after weight transfer (``model.reinit_head``).

A model pretrained on HKH has learnt a head for HKH's labels, which have no lake: its lake
output was trained never to fire. Fine-tuning keeps the transferred encoder and decoder
(the features) and the boundary head, and starts the per-class layer afresh, initialised
the way segmentation-models-pytorch initialises a new head.
"""

from __future__ import annotations

from segmentation_models_pytorch.base.initialization import initialize_head
from torch import nn


def reinit_segmentation_head(model: nn.Module) -> list[str]:
    """Re-initialise ``model.net.segmentation_head`` in place (from the global torch RNG, so a
    seeded run is reproducible); return the names of the tensors it reset."""
    head = model.net.segmentation_head
    initialize_head(head)
    return [f"net.segmentation_head.{name}" for name, _ in head.named_parameters()]
