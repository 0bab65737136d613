"""Losses: hand-computed values, agreement with torch/smp, gradients, ignore pixels, autocast."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from glacier.config import LossConfig
from glacier.losses import (
    CombinedLoss,
    boundary_loss,
    boundary_target,
    dice_loss,
    focal_loss,
    mcc_loss,
    soft_confusion,
)
from glacier.metrics import confusion_matrix, matthews_corrcoef

LOSSES = {
    "focal": lambda logits, target: focal_loss(logits, target, gamma=2.0),
    "dice": dice_loss,
    "mcc": mcc_loss,
}


def random_batch(seed=0, shape=(2, 4, 12, 12), ignore_share=0.2):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=gen)
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=gen)
    target[torch.rand(target.shape, generator=gen) < ignore_share] = 255
    return logits, target


def confident(target, num_classes=4, scale=30.0, wrong=False):
    """Logits that put (almost) all mass on the true class, or on a wrong one."""
    classes = torch.where(target == 255, 0, target)
    if wrong:
        classes = (classes + 1) % num_classes
    return F.one_hot(classes, num_classes).permute(0, 3, 1, 2).float() * scale


def test_focal_hand_computed_two_pixels():
    # Pixel 1: logits (0, log 3) -> p(true=1) = 3/4; pixel 2: (0, 0) -> p(true=0) = 1/2.
    logits = torch.tensor([[[[0.0, 0.0]], [[math.log(3), 0.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[1, 0]]])
    expected = (-(0.25**2) * math.log(0.75) - (0.5**2) * math.log(0.5)) / 2
    assert focal_loss(logits, target, gamma=2).item() == pytest.approx(expected, rel=1e-6)
    weighted = (-2 * 0.25**2 * math.log(0.75) - 1 * 0.5**2 * math.log(0.5)) / 3
    assert focal_loss(logits, target, gamma=2, class_weights=[1.0, 2.0]).item() == pytest.approx(
        weighted, rel=1e-6
    )


def test_focal_with_gamma_zero_is_cross_entropy():
    logits, target = random_batch(1)
    weights = torch.tensor([0.5, 1.0, 2.0, 4.0])
    torch.testing.assert_close(
        focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target, ignore_index=255)
    )
    torch.testing.assert_close(
        focal_loss(logits, target, gamma=0.0, class_weights=weights),
        F.cross_entropy(logits, target, weight=weights, ignore_index=255),
    )


def test_dice_hand_computed_and_equal_to_smp():
    # One image, two classes, three pixels; probabilities from logits (0, log 3) = (1/4, 3/4).
    logits = torch.tensor([[[[0.0, 0.0, 0.0]], [[math.log(3), math.log(3), math.log(3)]]]])
    target = torch.tensor([[[1, 1, 0]]])
    # class 0: I = 1/4, |P| + |Y| = 3/4 + 1 -> 1 - 0.5/1.75; class 1: I = 3/2, |P| + |Y| = 9/4 + 2
    expected = ((1 - 0.5 / 1.75) + (1 - 3 / 4.25)) / 2
    assert dice_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)

    from segmentation_models_pytorch.losses import DiceLoss

    smp_dice = DiceLoss("multiclass", ignore_index=255)
    for seed in range(3):
        logits, target = random_batch(seed)
        target[0, :, :] = torch.where(target[0] == 3, 255, target[0])  # a class absent from one image
        torch.testing.assert_close(dice_loss(logits, target), smp_dice(logits, target))


def test_soft_confusion_matches_hard_confusion_for_confident_logits():
    _, target = random_batch(2)
    soft = soft_confusion(confident(target), target)
    hard = confusion_matrix(target.clone().masked_fill(target == 255, 0), target)
    torch.testing.assert_close(soft, hard.float(), atol=1e-3, rtol=0)


def test_mcc_loss_equals_one_minus_sklearn_mcc_for_hard_predictions():
    logits, target = random_batch(3)
    pred = logits.argmax(1)
    hard_logits = F.one_hot(pred, 4).permute(0, 3, 1, 2).float() * 40
    expected = 1 - matthews_corrcoef(confusion_matrix(pred, target))
    assert mcc_loss(hard_logits, target).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_perfect_is_near_zero_and_wrong_is_large(name):
    _, target = random_batch(4)
    loss_fn = LOSSES[name]
    perfect = loss_fn(confident(target), target).item()
    wrong = loss_fn(confident(target, wrong=True), target).item()
    random = loss_fn(random_batch(4)[0], target).item()
    assert perfect < 1e-3
    assert wrong > random > perfect
    assert wrong > 0.9


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_are_finite_and_raising_the_true_logit_lowers_the_loss(name):
    logits, target = random_batch(5)
    logits.requires_grad_(True)
    loss = LOSSES[name](logits, target)
    loss.backward()
    grad = logits.grad
    assert torch.isfinite(grad).all()
    valid = target != 255
    true_grad = grad.gather(1, torch.where(valid, target, 0).unsqueeze(1)).squeeze(1)[valid]
    # Descent direction: the true-class logit should rise (negative gradient) on average
    # and for nearly every pixel.
    assert true_grad.mean() < 0
    assert (true_grad <= 1e-9).float().mean() > 0.9
    # A finite step along the true-class logits lowers the loss.
    with torch.no_grad():
        bumped = logits + 0.5 * F.one_hot(torch.where(valid, target, 0), 4).permute(
            0, 3, 1, 2
        ) * valid.unsqueeze(1)
    assert LOSSES[name](bumped, target) < loss


@pytest.mark.parametrize("name", [*sorted(LOSSES), "boundary"])
def test_ignore_pixels_change_neither_loss_nor_gradient(name):
    logits, target = random_batch(6)
    loss_fn = LOSSES.get(name) or (lambda lg, t: boundary_loss(lg[:, :1], t))
    ignored = target == 255
    first = logits.clone().requires_grad_(True)
    loss_a = loss_fn(first, target)
    loss_a.backward()
    second = logits.clone()
    second[ignored.unsqueeze(1).expand_as(second)] = torch.randn(int(ignored.sum()) * 4) * 50
    second.requires_grad_(True)
    loss_b = loss_fn(second, target)
    loss_b.backward()
    torch.testing.assert_close(loss_a, loss_b)
    torch.testing.assert_close(first.grad, second.grad)
    assert (first.grad.abs().sum(1)[ignored] == 0).all()


def test_boundary_target_marks_class_edges_not_ignore_edges():
    # mask (255 = ignore)    | expected boundary
    table = """
    0   0   0 1 1 1          | 0 0 1 1 0 0
    0   0   0 1 1 1          | 0 0 1 1 0 0
    0   0   0 1 1 1          | 0 0 1 1 1 1
    255 255 0 0 0 0          | 0 0 1 1 1 1
    0   0   0 0 0 0          | 0 0 0 0 0 0
    """
    rows = [line.split("|") for line in table.strip().splitlines()]
    target = torch.tensor([[int(v) for v in mask.split()] for mask, _ in rows]).unsqueeze(0)
    expected = torch.tensor([[float(v) for v in edge.split()] for _, edge in rows])
    edges, valid = boundary_target(target)
    torch.testing.assert_close(edges[0, 0], expected)
    assert valid[0, 0, 3, :2].sum() == 0


def test_boundary_loss_auto_pos_weight_and_sign():
    _, target = random_batch(7, ignore_share=0.0)
    target[:, :, :6] = 0
    target[:, :, 6:] = 1  # one vertical edge
    edges, _ = boundary_target(target)
    good = (edges * 2 - 1) * 10
    assert boundary_loss(good, target).item() < 1e-3
    assert boundary_loss(-good, target).item() > 10
    # Auto pos_weight: missing the rare edges costs as much as the many non-edges.
    only_edges_wrong = torch.full_like(edges, -10.0)  # says "no edge" everywhere
    assert boundary_loss(only_edges_wrong, target) > boundary_loss(only_edges_wrong, target, pos_weight=1.0)


def test_combined_loss_parts_ramp_and_class_weights():
    logits, target = random_batch(8)
    edges = torch.randn(2, 1, 12, 12)
    weights = {"focal_weight": 1.0, "dice_weight": 1.0, "mcc_weight": 0.5, "boundary_weight": 0.5}
    criterion = CombinedLoss(**weights, boundary_ramp="linear", boundary_ramp_epochs=4)
    total, parts = criterion(logits, target, edges)
    assert set(parts) == {"focal", "dice", "mcc", "boundary"}
    assert criterion.boundary_weight == 0.0
    expected = parts["focal"] + parts["dice"] + 0.5 * parts["mcc"]
    torch.testing.assert_close(total, expected)
    criterion.set_epoch(2)
    assert criterion.boundary_weight == pytest.approx(0.25)
    criterion.set_epoch(9)
    total, parts = criterion(logits, target, edges)
    torch.testing.assert_close(total, expected + 0.5 * parts["boundary"])
    assert CombinedLoss(**weights).boundary_weight == 0.5

    no_boundary_total, no_boundary_parts = criterion(logits, target)
    assert "boundary" not in no_boundary_parts
    torch.testing.assert_close(no_boundary_total, expected)

    weighted = CombinedLoss(focal_weight=1.0, class_weights=[1.0, 1.0, 1.0, 5.0])
    assert set(weighted(logits, target)[1]) == {"focal"}
    assert weighted(logits, target)[0] != CombinedLoss(focal_weight=1.0)(logits, target)[0]
    with pytest.raises(ValueError, match="every loss weight is 0"):
        CombinedLoss()(logits, target)


def test_the_config_loss_section_is_exactly_the_loss_arguments():
    """Training builds the loss as CombinedLoss(**cfg.training.loss.model_dump(), ...)."""
    logits, target = random_batch(10)
    cfg = LossConfig(mcc_weight=0.25, focal_gamma=1.0, class_weights=[1.0, 2.0, 2.0, 4.0])
    from_config = CombinedLoss(**cfg.model_dump())
    by_hand = CombinedLoss(
        focal_weight=1.0,
        dice_weight=0.5,
        mcc_weight=0.25,
        boundary_weight=0.2,
        boundary_ramp="none",
        boundary_ramp_epochs=10,
        focal_gamma=1.0,
        class_weights=[1.0, 2.0, 2.0, 4.0],
    )
    torch.testing.assert_close(from_config(logits, target)[0], by_hand(logits, target)[0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_gives_finite_float32_losses(dtype):
    model = torch.nn.Conv2d(3, 4, 1)
    head = torch.nn.Conv2d(3, 1, 1)
    x = torch.randn(2, 3, 16, 16) * 100  # large activations: overflow-prone in half precision
    _, target = random_batch(9, shape=(2, 4, 16, 16))
    criterion = CombinedLoss(focal_weight=1.0, dice_weight=1.0, mcc_weight=0.5, boundary_weight=0.5)
    try:
        with torch.autocast("cpu", dtype=dtype):
            logits, edges = model(x), head(x)
            total, parts = criterion(logits, target, edges)
    except RuntimeError as exc:  # fp16 autocast is not supported on every CPU build
        pytest.skip(f"{dtype} autocast unsupported on this CPU: {exc}")
    assert logits.dtype == dtype
    assert total.dtype == torch.float32
    assert torch.isfinite(total) and all(torch.isfinite(v) for v in parts.values())
    total.backward()
    assert torch.isfinite(model.weight.grad).all() and torch.isfinite(head.weight.grad).all()
