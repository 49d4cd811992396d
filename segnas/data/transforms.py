"""Paired image/label transforms whose randomness depends only on (seed, epoch, item index).

Every random decision of :class:`TrainTransform` is drawn from
``numpy.random.default_rng([seed, epoch, index])``, so a batch is the same whatever the
number of DataLoader workers or the order in which they run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from ..stem import IMAGENET_MEAN, IMAGENET_STD
from .prepared import IGNORE_INDEX

_MEAN_255 = np.asarray(IMAGENET_MEAN, dtype=np.float32) * 255.0
_INV_STD_255 = 1.0 / (np.asarray(IMAGENET_STD, dtype=np.float32) * 255.0)


def _as_size(size: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or any(int(v) < 1 for v in size):
        raise ConfigError(f"{name} must be a positive int or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def _as_pil(array_or_image: np.ndarray | Image.Image) -> Image.Image:
    if isinstance(array_or_image, Image.Image):
        return array_or_image
    return Image.fromarray(np.asarray(array_or_image))


def normalize_image(image: np.ndarray | Image.Image) -> torch.Tensor:
    """uint8 RGB (H, W, 3) -> float32 (3, H, W), normalised with the ImageNet mean/std."""
    array = np.asarray(image, dtype=np.float32)
    array = (array - _MEAN_255) * _INV_STD_255
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def label_tensor(label: np.ndarray | Image.Image) -> torch.Tensor:
    """uint8 (H, W) train ids -> int64 (H, W)."""
    return torch.from_numpy(np.asarray(label, dtype=np.int64).copy())


@dataclass(frozen=True)
class CropParams:
    """One random scale/crop/flip decision (``top``/``left`` in the scaled, padded image)."""

    scale: float
    top: int
    left: int
    flip: bool

    def to_dict(self) -> dict:
        return asdict(self)


class TrainTransform:
    """Random scale, crop (padding labels with 255) and horizontal flip, then normalise."""

    def __init__(
        self,
        crop_size: int | tuple[int, int],
        scale_range: tuple[float, float] = (0.5, 2.0),
        flip: bool = True,
        seed: int = 0,
    ) -> None:
        self.crop_size = _as_size(crop_size, "crop_size")
        low, high = (float(v) for v in scale_range)
        if not 0 < low <= high:
            raise ConfigError(f"scale_range must satisfy 0 < low <= high, got {scale_range!r}")
        self.scale_range = (low, high)
        self.flip = bool(flip)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; the same (seed, epoch, index) always gives the same crop."""
        self.epoch = int(epoch)

    def sample_params(self, height: int, width: int, index: int) -> CropParams:
        """The random decision for item ``index`` of an image of ``height`` x ``width``."""
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        scale = float(rng.uniform(*self.scale_range))
        scaled_h, scaled_w = self.scaled_size(height, width, scale)
        crop_h, crop_w = self.crop_size
        top = int(rng.integers(0, max(scaled_h, crop_h) - crop_h + 1))
        left = int(rng.integers(0, max(scaled_w, crop_w) - crop_w + 1))
        flip = bool(rng.random() < 0.5) if self.flip else False
        return CropParams(scale, top, left, flip)

    @staticmethod
    def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
        return max(1, round(height * scale)), max(1, round(width * scale))

    def apply(
        self, image: np.ndarray | Image.Image, label: np.ndarray | Image.Image, params: CropParams
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply ``params``; returns uint8 image (h, w, 3) and uint8 label (h, w), unnormalised."""
        image, label = _as_pil(image), _as_pil(label)
        width, height = image.size
        scaled_h, scaled_w = self.scaled_size(height, width, params.scale)
        if (scaled_h, scaled_w) != (height, width):
            image = image.resize((scaled_w, scaled_h), Image.BILINEAR)
            label = label.resize((scaled_w, scaled_h), Image.NEAREST)
        crop_h, crop_w = self.crop_size
        img = np.asarray(image)
        lab = np.asarray(label)
        out_img = np.empty((crop_h, crop_w, 3), dtype=np.uint8)
        out_img[...] = np.round(_MEAN_255).astype(np.uint8)  # pads normalise to ~0
        out_lab = np.full((crop_h, crop_w), IGNORE_INDEX, dtype=np.uint8)
        src = (slice(params.top, params.top + crop_h), slice(params.left, params.left + crop_w))
        patch_img, patch_lab = img[src], lab[src]
        out_img[: patch_img.shape[0], : patch_img.shape[1]] = patch_img
        out_lab[: patch_lab.shape[0], : patch_lab.shape[1]] = patch_lab
        if params.flip:
            out_img, out_lab = out_img[:, ::-1], out_lab[:, ::-1]
        return out_img, out_lab

    def __call__(
        self, image: np.ndarray | Image.Image, label: np.ndarray | Image.Image, index: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised float32 (3, h, w), int64 (h, w)) for item ``index`` of this epoch."""
        image = _as_pil(image)
        width, height = image.size
        params = self.sample_params(height, width, index)
        out_img, out_lab = self.apply(image, label, params)
        return normalize_image(out_img), label_tensor(out_lab)


class EvalTransform:
    """Optional resize to ``size`` = (H, W) (bilinear image, nearest label), then normalise."""

    def __init__(self, size: int | tuple[int, int] | None = None) -> None:
        self.size = None if size is None else _as_size(size, "size")

    def __call__(
        self, image: np.ndarray | Image.Image, label: np.ndarray | Image.Image, index: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.size is not None:
            height, width = self.size
            image = _as_pil(image).resize((width, height), Image.BILINEAR)
            label = _as_pil(label).resize((width, height), Image.NEAREST)
        return normalize_image(image), label_tensor(label)
