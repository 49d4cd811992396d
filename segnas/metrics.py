"""Segmentation metrics from a confusion matrix over non-ignored pixels, and the search reward."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE_INDEX = 255


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of logits to the label size (align_corners=False)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class ConfusionMatrix:
    """Accumulates a ``num_classes`` x ``num_classes`` matrix (rows: truth, columns: prediction)."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``prediction`` is logits (N, K, h, w) or labels (N, H, W)."""
        if prediction.dim() == 4:
            prediction = upsample_logits(prediction, tuple(target.shape[-2:])).argmax(dim=1)
        self.matrix += confusion_counts(
            prediction.reshape(-1).cpu(),
            target.reshape(-1).long().cpu(),
            self.num_classes,
            self.ignore_index,
        )

    def scores(self) -> dict[str, float | list[float]]:
        """mIoU, mean per-class accuracy, frequency-weighted IoU, pixel accuracy, per-class IoU."""
        return scores_from_confusion(self.matrix)


def confusion_counts(
    prediction: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int
) -> torch.Tensor:
    """The ``num_classes`` x ``num_classes`` counts of (truth, prediction) pairs of two flat
    label tensors, pixels whose truth is ``ignore_index`` left out."""
    keep = target != ignore_index
    pairs = target[keep] * num_classes + prediction[keep]
    counts = torch.bincount(pairs, minlength=num_classes**2)
    if counts.numel() > num_classes**2:  # a truth label beyond the classes: no extra pass
        raise ValueError(f"labels outside 0..{num_classes - 1} (and not {ignore_index})")
    return counts.reshape(num_classes, num_classes).to(torch.int64)


def scores_from_confusion(matrix: torch.Tensor) -> dict[str, float | list[float]]:
    """Scores from a confusion matrix; classes absent from the ground truth are left out of the
    means (their IoU is reported as NaN)."""
    matrix = matrix.to(torch.float64)
    true_positive = matrix.diag()
    support = matrix.sum(dim=1)
    predicted = matrix.sum(dim=0)
    union = support + predicted - true_positive
    present = support > 0
    iou = torch.where(present, true_positive / union.clamp(min=1), torch.nan)
    accuracy = torch.where(present, true_positive / support.clamp(min=1), torch.nan)
    total = support.sum()
    frequency = support / total if total > 0 else support
    return {
        "miou": float(iou[present].mean()) if present.any() else 0.0,
        "mean_acc": float(accuracy[present].mean()) if present.any() else 0.0,
        "fwiou": float((frequency[present] * iou[present]).sum()) if present.any() else 0.0,
        "pixel_acc": float(true_positive.sum() / total) if total > 0 else 0.0,
        "per_class_iou": [float(v) for v in iou],
    }


def reward_from_scores(scores: dict) -> float:
    """The search reward: geometric mean of mIoU, mean accuracy and frequency-weighted IoU."""
    values = [scores["miou"], scores["mean_acc"], scores["fwiou"]]
    if any(v <= 0 or math.isnan(v) for v in values):
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / 3)
