import math

import pytest
import torch

from segnas.metrics import (
    ConfusionMatrix,
    confusion_counts,
    reward_from_scores,
    scores_from_confusion,
)


def test_confusion_ignores_void_and_accumulates():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 1, 1, 2]]), torch.tensor([[0, 1, 2, 255]]))
    cm.update(torch.tensor([[2]]), torch.tensor([[2]]))
    assert cm.matrix.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_confusion_counts_equal_a_pixel_by_pixel_count():
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (4000,), generator=generator)
    target[torch.randint(0, 4000, (300,), generator=generator)] = 255
    prediction = torch.randint(0, 5, (4000,), generator=generator)
    expected = [[0] * 5 for _ in range(5)]
    for truth, predicted in zip(target.tolist(), prediction.tolist(), strict=True):
        if truth != 255:
            expected[truth][predicted] += 1
    assert confusion_counts(prediction, target, 5, 255).tolist() == expected
    with pytest.raises(ValueError, match="labels outside 0..4"):
        confusion_counts(prediction, torch.full((4000,), 7), 5, 255)


def test_scores_by_hand():
    matrix = torch.tensor([[3, 1], [0, 4]])
    s = scores_from_confusion(matrix)
    iou0, iou1 = 3 / 4, 4 / 5
    assert s["miou"] == pytest.approx((iou0 + iou1) / 2)
    assert s["mean_acc"] == pytest.approx((3 / 4 + 4 / 4) / 2)
    assert s["fwiou"] == pytest.approx(4 / 8 * iou0 + 4 / 8 * iou1)
    assert s["pixel_acc"] == pytest.approx(7 / 8)
    expected = (s["miou"] * s["mean_acc"] * s["fwiou"]) ** (1 / 3)
    assert reward_from_scores(s) == pytest.approx(expected)


def test_absent_classes_are_left_out_of_the_means():
    s = scores_from_confusion(torch.tensor([[2, 0, 0], [0, 0, 0], [0, 0, 2]]))
    assert s["miou"] == 1.0
    assert math.isnan(s["per_class_iou"][1])


def test_logits_are_upsampled_to_the_label_size():
    logits = torch.zeros(1, 2, 2, 2)
    logits[:, 1, :, 1] = 1.0
    cm = ConfusionMatrix(2)
    target = torch.tensor([[[0, 0, 1, 1]] * 4])
    cm.update(logits, target)
    assert cm.matrix.sum() == 16
    assert cm.scores()["pixel_acc"] > 0.7


def test_reward_is_zero_for_a_useless_network():
    assert reward_from_scores({"miou": 0.0, "mean_acc": 0.3, "fwiou": 0.2}) == 0.0
