"""How much disk a whole workflow needs, and on which disk: computed, never guessed.

    items = workflow_budget(load_config("hkh_pretrain_kaggle"), load_config("competition_finetune_kaggle"),
                            hkh_tiles=7229, competition_tiles=25, folds=5, seeds=3)
    print(format_budget(items))

Prepared datasets come from the format's own sizes (``prepared_format.prepared_bytes``).
Model folders and training states are measured: the presets' model is built (no weights
downloaded), written as a model folder, stepped once with the presets' optimizer, and its
files and the optimizer state are saved to a temporary folder and sized. A run folder holds
``best/``, ``last/`` and ``checkpoints.keep_last`` states (logs and metrics are a few kB).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from glacier.config import GlacierConfig
from glacier.data import prepared_format as fmt
from glacier.domain import COMPETITION_BANDS, NUM_CLASSES
from glacier.errors import ConfigError

SUBMISSION_LIMIT_BYTES = 300 * 10**6
"""The platform's limit on model.pth; the exporter stores float16 weights above it."""


@dataclass(frozen=True)
class ModelSizes:
    """Measured bytes of one model of a config."""

    folder: int
    """A model folder (config.json, model.safetensors, boundary head, card)."""
    state: int
    """One resumable training state (model weights + optimizer state, + the EMA's weights)."""
    net_parameters: int
    """Parameters of the plain network (what the submission ships)."""


@dataclass(frozen=True)
class BudgetItem:
    disk: str
    what: str
    bytes: int


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure_model(cfg: GlacierConfig, bands: tuple[str, ...] = COMPETITION_BANDS) -> ModelSizes:
    """Build ``cfg``'s model, write it as a model folder and one training state; their sizes."""
    import torch
    from safetensors.torch import save_file

    from glacier.models import build_model, save_model_folder
    from glacier.normalization import BandStats
    from glacier.training.builders import build_optimizer

    if cfg.model.encoder_weights is not None:
        raise ConfigError(
            "model.encoder_weights: the budget builds the model without downloading weights; set it to null"
        )
    model = build_model(cfg.model, bands, NUM_CLASSES)
    stats = BandStats(tuple(bands), (0.0,) * len(bands), (1.0,) * len(bands))
    optimizer = build_optimizer(model.parameters(), cfg.training.optimizer)
    outputs = model(torch.zeros(2, len(bands), 64, 64), with_boundary=model.boundary_head is not None)
    loss = sum(o.float().mean() for o in (outputs if isinstance(outputs, tuple) else (outputs,)))
    loss.backward()
    optimizer.step()  # the optimizer's state (AdamW: two moments per parameter) now exists
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        save_model_folder(model, folder, normalization=stats)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, Path(tmp) / "state_model.safetensors")
        torch.save(optimizer.state_dict(), Path(tmp) / "optimizer.bin")
        names = ["state_model.safetensors", "optimizer.bin"]
        if cfg.training.ema.enabled:  # the weight average rides in every state (training/ema.py)
            torch.save({"updates": 1, "module": model.state_dict()}, Path(tmp) / "custom_checkpoint_0.pkl")
            names.append("custom_checkpoint_0.pkl")
        state_bytes = sum((Path(tmp) / n).stat().st_size for n in names)
        return ModelSizes(_folder_bytes(folder), state_bytes, sum(p.numel() for p in model.net.parameters()))


def run_folder_bytes(cfg: GlacierConfig, sizes: ModelSizes) -> int:
    """A finished run folder: best/ and last/ model folders and ``keep_last`` states."""
    return 2 * sizes.folder + cfg.checkpoints.keep_last * sizes.state


def workflow_budget(
    pretrain: GlacierConfig,
    finetune: GlacierConfig,
    hkh_tiles: int,
    competition_tiles: int,
    folds: int,
    seeds: int,
    tile_size: int = 512,
    bands: tuple[str, ...] = COMPETITION_BANDS,
) -> list[BudgetItem]:
    """Every folder of the Kaggle workflow (scripts 01-05) with its bytes and its disk; the
    submission is the final ensemble (one all-data member per seed), as 05_submission.sh ships."""
    pre, fine = measure_model(pretrain, bands), measure_model(finetune, bands)
    members = folds * seeds
    shipped = seeds * fine.net_parameters * 4
    precision = "float32" if shipped <= SUBMISSION_LIMIT_BYTES else "float16"
    shipped = shipped if precision == "float32" else shipped // 2
    over = (
        ", over the 300 MB limit: ship fewer members (--members)" if shipped > SUBMISSION_LIMIT_BYTES else ""
    )

    def states(cfg: GlacierConfig, sizes: ModelSizes, runs: int) -> str:
        return f"{runs * cfg.checkpoints.keep_last * sizes.state / 1e9:.2f} GB of it {cfg.checkpoints.keep_last} states per run"

    return [
        BudgetItem("scratch", f"prepared HKH: {hkh_tiles} tiles x {len(bands)} bands x {tile_size}^2, float16",
                   fmt.prepared_bytes(hkh_tiles, len(bands), tile_size)),
        BudgetItem("scratch", f"prepared competition: {competition_tiles} tiles", fmt.prepared_bytes(competition_tiles, len(bands), tile_size)),
        BudgetItem("working", f"runs/hkh_pretrain: best, last ({states(pretrain, pre, 1)})", run_folder_bytes(pretrain, pre)),
        BudgetItem("working", f"runs/competition_finetune: {folds} fold runs ({states(finetune, fine, folds)})",
                   folds * run_folder_bytes(finetune, fine)),
        BudgetItem("working", f"runs/ensemble/runs: {seeds} seeds x {folds} folds ({states(finetune, fine, members)})",
                   members * run_folder_bytes(finetune, fine)),
        BudgetItem("working", f"runs/ensemble/members: {members} model folders", members * fine.folder),
        BudgetItem("working", f"runs/final/runs: {seeds} all-data runs ({states(finetune, fine, seeds)})",
                   seeds * run_folder_bytes(finetune, fine)),
        BudgetItem("working", f"runs/final/members: {seeds} model folders", seeds * fine.folder),
        BudgetItem("working", f"submission/model.pth: the final ensemble's {seeds} members, {precision}{over}", shipped),
    ]  # fmt: skip


def format_budget(items: list[BudgetItem], float32_hkh_bytes: int | None = None) -> str:
    """A Markdown table, with a total per disk."""
    lines = ["| disk | what | GB |", "| --- | --- | ---: |"]
    lines += [f"| {item.disk} | {item.what} | {item.bytes / 1e9:.2f} |" for item in items]
    for disk in dict.fromkeys(item.disk for item in items):
        total = sum(item.bytes for item in items if item.disk == disk)
        lines.append(f"| **{disk}** | **total** | **{total / 1e9:.2f}** |")
    if float32_hkh_bytes is not None:
        lines.append(f"| (format 1) | prepared HKH as float32 | {float32_hkh_bytes / 1e9:.2f} |")
    return "\n".join(lines)
