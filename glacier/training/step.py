"""One training step and whole-tile validation: the per-batch core of ``fit``.

Kept apart from the loop so that benchmarks/loop_overhead.py measures exactly the step
``fit`` runs, against a bare PyTorch loop.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F

from glacier.domain import IGNORE_INDEX


@dataclasses.dataclass
class StepOutput:
    loss: torch.Tensor
    """Detached total loss of the batch."""
    parts: dict[str, torch.Tensor]
    finite: bool


def all_finite(accelerator, loss: torch.Tensor) -> bool:
    """Whether the loss is finite on *every* process: a decision all processes share, so a
    NaN on one GPU cannot leave the others waiting in a gradient all-reduce."""
    flag = torch.isfinite(loss.detach()).reshape(1).float()
    if accelerator.num_processes > 1:
        flag = accelerator.gather(flag).min().reshape(1)
    return bool(flag.item())


def train_step(
    accelerator, model, batch: dict[str, torch.Tensor], loss_fn, optimizer, max_grad_norm: float | None
) -> StepOutput:
    """Forward, loss, backward, clip and (at accumulation boundaries) step: one batch.

    A non-finite loss skips the backward pass and clears the accumulated gradients; the
    caller decides whether that stops the run.
    """
    with accelerator.accumulate(model):
        logits, boundary_logits = model(batch["image"], with_boundary=True)
        loss, parts = loss_fn(logits, batch["mask"], boundary_logits)
        if not all_finite(accelerator, loss):
            optimizer.zero_grad(set_to_none=True)
            return StepOutput(loss.detach(), {}, False)
        accelerator.backward(loss)
        if max_grad_norm is not None and accelerator.sync_gradients:
            accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return StepOutput(loss.detach(), {k: v.detach() for k, v in parts.items()}, True)


def pad_to_stride(
    images: torch.Tensor, masks: torch.Tensor, stride: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad whole tiles on the bottom/right to a multiple of the network stride (image with
    0, the normalised band mean; mask with the ignore index)."""
    h, w = images.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if not (ph or pw):
        return images, masks
    return F.pad(images, (0, pw, 0, ph)), F.pad(masks, (0, pw, 0, ph), value=IGNORE_INDEX)


def progress_bar(accelerator, total: int, desc: str, initial: int = 0):
    """A tqdm bar on the main process (silent on the others), for training and validation."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        disable=not accelerator.is_main_process,
        mininterval=1.0,
        dynamic_ncols=True,
        leave=False,
    )


@torch.no_grad()
def validate(accelerator, model, loader, loss_fn, stride: int, num_classes: int) -> dict[str, Any]:
    """Whole-tile validation: MCC, IoU... from the summed confusion of every tile exactly
    once, and the mean per-tile loss; identical for 1 or N processes."""
    from glacier.metrics import metrics_from_confusion, per_sample_confusion

    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=accelerator.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    tiles = 0
    bar = progress_bar(accelerator, len(loader), "validate")
    for batch in loader:
        images, masks = pad_to_stride(batch["image"], batch["mask"], stride)
        logits, boundary_logits = model(images, with_boundary=True)
        # Per-tile losses, so that the mean does not depend on how tiles were batched.
        losses = torch.stack(
            [
                loss_fn(
                    logits[i : i + 1],
                    masks[i : i + 1],
                    None if boundary_logits is None else boundary_logits[i : i + 1],
                )[0].float()
                for i in range(len(images))
            ]
        )
        cm = per_sample_confusion(logits.argmax(1), masks, num_classes=num_classes, ignore_index=IGNORE_INDEX)
        cm, losses = accelerator.gather_for_metrics((cm, losses))
        confusion += cm.sum(0).to(confusion.dtype)
        loss_sum += losses.double().sum()
        tiles += len(losses)
        bar.update()
    bar.close()
    model.train()
    metrics = metrics_from_confusion(confusion.cpu().numpy())
    metrics["loss"] = float(loss_sum.item() / max(tiles, 1))
    metrics["tiles"] = tiles
    return metrics
