"""Confusion matrices and the metrics derived from them, checked against sklearn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score, jaccard_score, matthews_corrcoef

from glacier.metrics import ConfusionMeter, confusion_matrix, metrics_from_confusion, per_sample_confusion


def random_masks(seed, shape=(3, 20, 24), ignore_share=0.15, num_classes=4):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, shape)
    # Predictions mostly right, so the MCC is far from 0 and errors are informative.
    pred = np.where(rng.random(shape) < 0.6, target, rng.integers(0, num_classes, shape))
    target[rng.random(shape) < ignore_share] = 255
    return pred, target


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_with_ignore_pixels(seed):
    pred, target = random_masks(seed)
    cm = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target))
    assert cm.dtype == torch.int64 and cm.shape == (4, 4)
    valid = target != 255
    p, t = pred[valid], target[valid]
    np.testing.assert_array_equal(cm.numpy(), sk_confusion(t, p, labels=[0, 1, 2, 3]))
    np.testing.assert_array_equal(confusion_matrix(pred, target), cm.numpy())  # numpy path

    m = metrics_from_confusion(cm)
    assert m["mcc"] == pytest.approx(matthews_corrcoef(t, p), abs=1e-12)
    names = ["background", "glacier", "debris", "lake"]
    for k, name in enumerate(names):
        assert m["iou"][name] == pytest.approx(jaccard_score(t, p, labels=[k], average=None)[0])
        assert m["f1"][name] == pytest.approx(f1_score(t, p, labels=[k], average=None)[0])
    assert m["miou"] == pytest.approx(jaccard_score(t, p, average="macro"))
    assert m["pixel_accuracy"] == pytest.approx((p == t).mean())
    assert m["support"] == {n: int((t == k).sum()) for k, n in enumerate(names)}
    assert m["pixels"] == valid.sum()


def test_hand_computed_table():
    # truth:      0 0 1 1 2 ;  prediction: 0 1 1 1 0
    cm = confusion_matrix(torch.tensor([0, 1, 1, 1, 0]), torch.tensor([0, 0, 1, 1, 2]), num_classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    m = metrics_from_confusion(cm, class_names=("a", "b", "c"))
    assert m["iou"] == {"a": pytest.approx(1 / 3), "b": pytest.approx(2 / 3), "c": 0.0}
    assert m["f1"]["a"] == pytest.approx(0.5) and m["f1"]["b"] == pytest.approx(0.8)
    # sklearn: (c*s - t.p) / sqrt((s^2 - p.p)(s^2 - t.t)), t = (2, 2, 1), p = (2, 3, 0)
    assert m["mcc"] == pytest.approx((3 * 5 - 10) / np.sqrt((25 - 13) * (25 - 9)))


def test_absent_class_is_none_and_left_out_of_mean():
    pred = torch.tensor([0, 1, 1, 0])
    target = torch.tensor([0, 1, 0, 0])
    m = metrics_from_confusion(confusion_matrix(pred, target))
    assert m["iou"]["debris"] is None and m["f1"]["lake"] is None
    assert m["miou"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_undefined_mcc_is_zero_like_sklearn():
    target = np.zeros(10, dtype=np.int64)
    m = metrics_from_confusion(confusion_matrix(target.copy(), target))
    assert m["mcc"] == 0.0
    with pytest.warns(UserWarning):  # sklearn warns about the single label, and returns 0
        assert matthews_corrcoef(target, target) == 0.0
    empty = metrics_from_confusion(np.zeros((4, 4), dtype=np.int64))
    assert empty["mcc"] == 0.0 and empty["miou"] is None and empty["pixel_accuracy"] is None


def test_per_sample_confusion_sums_to_batch_confusion():
    pred, target = map(torch.from_numpy, random_masks(7))
    per_sample = per_sample_confusion(pred, target)
    assert per_sample.shape == (3, 4, 4)
    for b in range(3):
        assert torch.equal(per_sample[b], confusion_matrix(pred[b], target[b]))
    assert torch.equal(per_sample.sum(0), confusion_matrix(pred, target))


def test_meter_accumulates_and_resets():
    meter = ConfusionMeter()
    all_pred, all_target = [], []
    for seed in range(4):
        pred, target = map(torch.from_numpy, random_masks(seed))
        logits = torch.nn.functional.one_hot(pred, 4).permute(0, 3, 1, 2).float()
        meter.update(logits if seed % 2 else pred, target)  # logits or indices
        all_pred.append(pred)
        all_target.append(target)
    expected = confusion_matrix(torch.cat(all_pred), torch.cat(all_target))
    assert torch.equal(meter.confusion, expected)
    flat_t, flat_p = torch.cat(all_target).flatten().numpy(), torch.cat(all_pred).flatten().numpy()
    valid = flat_t != 255
    assert meter.compute()["mcc"] == pytest.approx(matthews_corrcoef(flat_t[valid], flat_p[valid]))
    meter.reset()
    assert meter.confusion.sum() == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(torch.tensor([4]), torch.tensor([0]))
