"""The training loss: cross-entropy of logits bilinearly upsampled to the labels' size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .metrics import IGNORE_INDEX


def segmentation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (N, C, h, w) upsampled bilinearly to ``labels`` (N, H, W).

    Pixels labelled ``ignore_index`` do not count; ``weight`` weighs the classes as in
    ``F.cross_entropy``. Logits already at the labels' size are used as they are. The search,
    full training and ``segnas bench train`` all train with this loss.
    """
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(logits, labels, weight=weight, ignore_index=ignore_index)
