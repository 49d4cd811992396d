"""Scoring a trained network: eval-time inputs and the confusion matrix over a dataset."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .data.transforms import label_tensor, normalize_image
from .metrics import ConfusionMatrix
from .progress import Progress


class ResizeInput:
    """Eval transform: resize only the image to ``size`` (H, W); the label keeps its size.

    Predictions are upsampled to the label, so metrics are computed at label resolution.
    """

    def __init__(self, size: Sequence[int] | None = None) -> None:
        self.size = None if size is None else (int(size[0]), int(size[1]))

    def __call__(
        self, image: Image.Image, label: Image.Image, index: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.size is not None and (image.height, image.width) != self.size:
            image = image.resize((self.size[1], self.size[0]), Image.BILINEAR)
        return normalize_image(image), label_tensor(label)


def prepare_image(image: Image.Image, size: Sequence[int] | None) -> torch.Tensor:
    """An RGB PIL image -> normalised (1, 3, H, W) batch, resized to ``size`` when given."""
    image = image.convert("RGB")
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((int(size[1]), int(size[0])), Image.BILINEAR)
    return normalize_image(np.asarray(image)).unsqueeze(0)


def amp_autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """float16 autocast on CUDA when ``enabled``; a no-op otherwise."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def to_device_input(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Move a batch to ``device``, in channels-last memory format when asked."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def score_model(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    device: torch.device,
    channels_last: bool = False,
    amp: bool = False,
    progress: Progress | None = None,
) -> ConfusionMatrix:
    """Confusion matrix of ``model`` over ``dataset`` (one image at a time, logits upsampled to
    the label size)."""
    model.eval()
    confusion = ConfusionMatrix(num_classes)
    loader = DataLoader(dataset, batch_size=1, shuffle=False)
    for image, label in loader:
        with amp_autocast(device, amp):
            logits = model(to_device_input(image, device, channels_last))
        confusion.update(logits.float(), label)
        if progress is not None:
            progress.update()
    return confusion
