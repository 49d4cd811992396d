"""Prediction on image files: colourised masks (dataset palette) and overlays."""

from __future__ import annotations

import os
import warnings
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


MAX_PIXELS_ENV = "SEGNAS_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 100_000_000


def max_image_pixels(value: int | None = None) -> int:
    """The largest image (in pixels) predict reads: ``value``, else $SEGNAS_MAX_IMAGE_PIXELS."""
    if value is None:
        raw = os.environ.get(MAX_PIXELS_ENV)
        if raw is None:
            return DEFAULT_MAX_PIXELS
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise DataError(
                f"{MAX_PIXELS_ENV}={raw!r} is not a positive whole number of pixels: "
                f"set it to e.g. {DEFAULT_MAX_PIXELS} or unset it"
            )
    return value


def _output_paths(path: Path, out_dir: Path) -> tuple[Path, Path]:
    return out_dir / f"{path.stem}_mask.png", out_dir / f"{path.stem}_overlay.png"


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_outputs(images: Sequence[Path], out_dir: Path, overwrite: bool) -> None:
    """Refuse, before anything is written, any output that would replace a file not ours.

    Outputs of two inputs may not share a name (``a/x.png`` and ``b/x.png``); no output may
    be an input (``x.png x_mask.png --out .``), even with ``overwrite``; an existing file is
    only replaced with ``overwrite``.
    """
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
    outputs = [out for path in images for out in _output_paths(path, out_dir)]
    for out in outputs:
        for path in images:
            if _same_file(out, path):
                raise DataError(
                    f"the output {out} is the input image {path}; nothing was written: "
                    "choose another --out folder or rename the input (--overwrite never "
                    "replaces an input)"
                )
    if not overwrite:
        existing = [out for out in outputs if out.exists() or out.is_symlink()]
        if existing:
            raise DataError(
                f"{existing[0]} already exists ({len(existing)} output file(s) in all); "
                "nothing was written: choose another --out folder, remove the file(s), or "
                "pass --overwrite to replace them"
            )


def _open_image(path: Path, max_pixels: int) -> Image.Image:
    """Open ``path`` (header only), refusing images larger than ``max_pixels``."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            if image.width * image.height > max_pixels:
                raise Image.DecompressionBombError("too large")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(
            f"image {path} is too large: more than {max_pixels} pixels; nothing was "
            f"written: pass --max-pixels N (or set {MAX_PIXELS_ENV}=N) to raise the limit, "
            "or downscale the image"
        ) from exc
    except (OSError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}; nothing was written") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    return image


def predict_files(
    images: Sequence[str | Path],
    checkpoint: str | Path,
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    input_size: Sequence[int] | None = None,
    optimized: bool = True,
    overwrite: bool = False,
    max_pixels: int | None = None,
) -> list[Prediction]:
    """Write ``<stem>_mask.png`` (palette colours) and ``<stem>_overlay.png`` per image.

    ``input_size`` defaults to the size the model was validated at during training. Before
    anything is written, inputs are refused whose outputs would collide, be an input, or
    replace an existing file (unless ``overwrite``), and every image's header is read
    (``max_pixels``, default $SEGNAS_MAX_IMAGE_PIXELS or 100 million, bounds its size). If an
    image fails later, the files written by this call are removed again.
    """
    paths = [Path(p) for p in images]
    out_dir = Path(out_dir)
    _check_outputs(paths, out_dir, overwrite)
    limit = max_image_pixels(max_pixels)
    for path in paths:
        _open_image(path, limit).close()
    device = torch.device(device)
    model, meta = load_trained(checkpoint, device)
    model, _ = maybe_optimize(model, optimized)
    size = input_size or meta["config"].get("input_size")
    palette = meta["palette"]
    written: list[Prediction] = []
    created: list[Path] = []
    made_dir = not out_dir.exists()
    try:
        for path in paths:
            image = _open_image(path, limit)
            try:
                image.load()
            except (OSError, SyntaxError) as exc:
                raise DataError(
                    f"cannot read image {path}: {exc}; the files this call created were "
                    "removed: fix or leave out the image and rerun"
                ) from exc
            image = image.convert("RGB")
            labels = predict_labels(model, image, size, device)
            mask = colourise(labels, palette)
            mask_path, overlay_path = _output_paths(path, out_dir)
            blended = overlay(np.asarray(image), mask)
            for target, array in ((mask_path, mask), (overlay_path, blended)):
                if not target.exists():
                    created.append(target)
                _save_png(target, array)
            written.append(Prediction(path, mask_path, overlay_path))
    except BaseException:
        for target in created:
            target.unlink(missing_ok=True)
        if made_dir and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
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
