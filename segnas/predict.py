"""Prediction on image files: colourised masks (dataset palette) and overlays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .checkpoint import load_trained
from .errors import DataError
from .io import atomic_path
from .metrics import IGNORE_INDEX, upsample_logits
from .scoring import prepare_image

IGNORE_COLOUR = (0, 0, 0)


def colourise(labels: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 RGB; ignored or unknown ids are black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:] = IGNORE_COLOUR
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    return lut[np.asarray(labels, dtype=np.uint8)]


def overlay(image: np.ndarray, mask_rgb: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a colour mask over an RGB image of the same size."""
    blended = (1 - alpha) * image.astype(np.float32) + alpha * mask_rgb.astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def maybe_optimize(model: nn.Module, enabled: bool = True) -> tuple[nn.Module, str]:
    """The fast inference path (``segnas.inference``) when present and ``enabled``."""
    if enabled:
        try:
            from .inference import optimize_for_inference
        except ImportError:
            return model, "plain"
        return optimize_for_inference(model), "optimized"
    return model, "plain"


@torch.no_grad()
def predict_labels(
    model: nn.Module, image: Image.Image, input_size: Sequence[int] | None, device: torch.device
) -> np.ndarray:
    """Class ids (H, W) at the image's own size; the input is resized to ``input_size``."""
    x = prepare_image(image, input_size).to(device)
    logits = upsample_logits(model(x).float(), (image.height, image.width))
    return logits.argmax(dim=1)[0].cpu().numpy().astype(np.uint8)


def _save_png(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


@dataclass(frozen=True)
class Prediction:
    """Files written for one input image."""

    image: Path
    mask: Path
    overlay: Path


def _check_distinct_outputs(images: Sequence[Path]) -> None:
    """Refuse inputs whose output names would collide (``a/x.png`` and ``b/x.png``)."""
    by_stem: dict[str, list[Path]] = {}
    for path in images:
        same = by_stem.setdefault(path.stem, [])
        if path.resolve() not in {p.resolve() for p in same}:
            same.append(path)
    clashes = {stem: paths for stem, paths in by_stem.items() if len(paths) > 1}
    if clashes:
        stem, paths = next(iter(clashes.items()))
        raise DataError(
            f"{' and '.join(map(str, paths))} would both be written to {stem}_mask.png "
            f"({len(clashes)} such name(s) in all); nothing was written: run predict once per "
            "folder with a different --out, or rename the inputs"
        )


def predict_files(
    images: Sequence[str | Path],
    checkpoint: str | Path,
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    input_size: Sequence[int] | None = None,
    optimized: bool = True,
) -> list[Prediction]:
    """Write ``<stem>_mask.png`` (palette colours) and ``<stem>_overlay.png`` per image.

    ``input_size`` defaults to the size the model was validated at during training. Inputs
    whose output names would collide are refused before anything is written.
    """
    _check_distinct_outputs([Path(p) for p in images])
    device = torch.device(device)
    model, meta = load_trained(checkpoint, device)
    model, _ = maybe_optimize(model, optimized)
    size = input_size or meta["config"].get("input_size")
    palette = meta["palette"]
    out_dir = Path(out_dir)
    written = []
    for path in map(Path, images):
        try:
            image = Image.open(path)
            image.load()
        except (OSError, SyntaxError) as exc:
            raise DataError(f"cannot read image {path}: {exc}") from exc
        image = image.convert("RGB")
        labels = predict_labels(model, image, size, device)
        mask = colourise(labels, palette)
        mask_path = out_dir / f"{path.stem}_mask.png"
        overlay_path = out_dir / f"{path.stem}_overlay.png"
        _save_png(mask_path, mask)
        _save_png(overlay_path, overlay(np.asarray(image), mask))
        written.append(Prediction(path, mask_path, overlay_path))
    return written


__all__ = [
    "IGNORE_INDEX",
    "Prediction",
    "colourise",
    "maybe_optimize",
    "overlay",
    "predict_files",
    "predict_labels",
]
