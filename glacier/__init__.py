"""glacier: train, ensemble, ship and serve glacier segmentation models for multispectral tiles."""

__version__ = "0.1.0"
