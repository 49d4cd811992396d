"""PyTorch datasets over a prepared dataset."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import DataError
from .prepared import PreparedDataset
from .transforms import EvalTransform

Transform = Callable[[Image.Image, Image.Image, int], tuple[torch.Tensor, torch.Tensor]]


def _decode(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (OSError, SyntaxError) as exc:
        raise DataError(f"cannot read {path}: {exc}; rerun prepare") from exc
    return image


def read_pair(prepared: PreparedDataset, image_id: str) -> tuple[Image.Image, Image.Image]:
    """Decode the RGB image and the uint8 label of ``image_id``; errors name the file."""
    image = _decode(prepared.image_path(image_id))
    image = image.convert("RGB") if image.mode != "RGB" else image
    return image, _decode(prepared.label_path(image_id))


class SegmentationDataset(Dataset):
    """Items ``(image float32 (3, H, W) normalised, label int64 (H, W), 255 = ignore)``.

    ``transform(image, label, index)`` receives PIL images and the item index; the default is
    :class:`EvalTransform` (no resize).
    """

    def __init__(
        self,
        prepared: PreparedDataset,
        ids: Sequence[str],
        transform: Transform | None = None,
    ) -> None:
        self.prepared = prepared
        self.ids = list(ids)
        self.transform = transform if transform is not None else EvalTransform()

    def __len__(self) -> int:
        return len(self.ids)

    def set_epoch(self, epoch: int) -> None:
        """Forward ``epoch`` to the transform (no-op when it has no ``set_epoch``).

        DataLoader workers copy the dataset when an epoch starts, so call this before
        iterating (with ``persistent_workers=False``).
        """
        if hasattr(self.transform, "set_epoch"):
            self.transform.set_epoch(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = read_pair(self.prepared, self.ids[index])
        return self.transform(image, label, index)
