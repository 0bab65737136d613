"""Out-of-fold predictions after a cross-validation run: its ``best/`` model predicts the
validation tiles it never trained on, with the test-time augmentation the export uses.

    ensure_oof(run_dir, cfg)        # RUN/oof/ (glacier/artifacts/oof.py), unless already there

Only the main process predicts; under ``accelerate launch`` the others wait at a barrier.
Splitting it would need a gather that drops Accelerate's padded duplicates, to save seconds:
the OOF is one TTA forward per validation tile, a fraction of one training epoch. A run that
already has its OOF (a finished fold skipped on resume) is never predicted again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from glacier import __version__
from glacier.artifacts.oof import OofFolder
from glacier.artifacts.run import RunFolder
from glacier.config import GlacierConfig
from glacier.domain import CLASS_NAMES


def ensure_oof(run_dir: str | Path, cfg: GlacierConfig, print_fn: Callable[[str], None] = print) -> None:
    """Write ``run_dir/oof/`` when ``cfg.oof.write`` and the run validated on a fold and kept
    a best model; every process calls it, the main one predicts."""
    from accelerate import PartialState

    state = PartialState()
    folder = RunFolder(run_dir)
    if (
        cfg.oof.write
        and not cfg.data.use_all_for_training
        and state.is_main_process
        and not folder.oof.exists()
    ):
        oof = write_oof(folder, cfg, device=state.device)
        print_fn(f"out-of-fold predictions of {len(oof.tiles)} tiles (TTA {cfg.oof.tta}) -> {oof.path}")
    state.wait_for_everyone()


def write_oof(folder: RunFolder, cfg: GlacierConfig, *, device="cpu") -> OofFolder:
    """Predict the run's validation tiles (fold ``cfg.data.fold``) with its best model."""
    from glacier.data.prepared import PreparedDataset
    from glacier.predict.loading import load_models
    from glacier.predict.predictor import Predictor

    prepared = PreparedDataset.open(cfg.data.path)
    _, tiles = prepared.train_val_indices(cfg.data.fold, split_seed=cfg.fold_split_seed)
    predictor = Predictor(load_models(folder.best), tta=cfg.oof.tta, device=device, tile_size=None)
    probabilities = predict_tiles(predictor, prepared, tiles)
    images = [prepared.manifest["tiles"][t]["image"] for t in tiles]
    return OofFolder.write(
        folder.oof.path,
        probabilities,
        np.asarray(prepared.masks[tiles]),
        fold=cfg.data.fold,
        split_seed=cfg.fold_split_seed,
        tiles=tiles,
        images=images,
        tta=cfg.oof.tta,
        model="best",
        prepared=str(prepared.path),
        num_tiles=len(prepared),
        classes=list(CLASS_NAMES),
        created_by=f"glacier {__version__}",
    )


def predict_tiles(predictor, prepared, tiles: np.ndarray) -> np.ndarray:
    """float16 (N, K, T, T) probabilities of prepared tiles ``tiles`` (raw values, the
    predictor's bands picked by name), each tile in one window."""
    bands = [prepared.bands.index(b) for b in predictor.bands]
    out = None
    for i, tile in enumerate(tiles):
        # raw_tile, not images: format 2 stores standardised values, and the predictor
        # normalises raw ones with the model's statistics, as it does for a GeoTIFF.
        probs = predictor.predict_probabilities(prepared.raw_tile(int(tile))[bands])
        if out is None:
            out = np.empty((len(tiles), *probs.shape), dtype=np.float16)
        out[i] = probs
    return out if out is not None else np.empty((0, len(CLASS_NAMES), 0, 0), dtype=np.float16)
