"""The artifacts glacier writes and reads, each a small class that owns its files.

- ``ModelFolder`` (model.py, config layout in model_config.py): one trained model, loadable
  by glacier and by ``segmentation_models_pytorch.from_pretrained``.
- ``EnsembleFolder`` (ensemble.py): model folders that predict together.
- ``render_card`` (card.py): the one writer of model and ensemble cards.
- ``RunFolder`` (run.py): what one ``fit`` writes (config, metrics, states, best/, last/).
- ``open_artifact`` (open.py): what a path or Hub id names (model, ensemble, run folder's
  best model, Hub repo).

Importing this package and reading metadata import no torch; loading or writing weights
imports it when called.
"""

from glacier.artifacts.card import render_card
from glacier.artifacts.ensemble import EnsembleFolder, EnsembleMember
from glacier.artifacts.model import ModelFolder, load_model_folder, save_model_folder
from glacier.artifacts.model_config import MODEL_FORMAT, MODEL_FORMAT_VERSION, ModelMeta
from glacier.artifacts.open import Artifact, open_artifact
from glacier.artifacts.run import RunFolder, RunResult

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "Artifact",
    "EnsembleFolder",
    "EnsembleMember",
    "ModelFolder",
    "ModelMeta",
    "RunFolder",
    "RunResult",
    "load_model_folder",
    "open_artifact",
    "render_card",
    "save_model_folder",
]
