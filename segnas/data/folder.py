"""A user's own data: ``images/`` + ``masks/`` (same file stems) + ``classes.yaml``.

``classes.yaml``::

    names: [background, lesion]      # class i is mask value i
    ignore_index: 255                # optional mask value to ignore (default 255)
    colors: [[0, 0, 0], [255, 0, 0]] # optional RGB per class

``images/`` either holds split subdirectories (``train/``, ``val/``, ``test/``, mirrored
under ``masks/``) or the images directly; a flat folder is split by a hash of (seed, id).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import ConfigError, DataError
from ..io import read_yaml
from .prepared import IGNORE_INDEX
from .source import Pair, Source, default_palette, identity_lut, list_images, require_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
CLASSES_FILE = "classes.yaml"


def read_classes(path: Path) -> tuple[list[str], int, list[tuple[int, int, int]]]:
    """(names, ignore value, palette) from ``classes.yaml``, with errors naming the key."""
    if not path.is_file():
        raise DataError(f"{path} does not exist; a folder dataset needs a {CLASSES_FILE}")
    spec = read_yaml(path)
    if not isinstance(spec, dict) or not isinstance(spec.get("names"), list) or not spec["names"]:
        raise ConfigError(f"{path}: 'names' must be a non-empty list of class names")
    names = [str(n) for n in spec["names"]]
    _refuse_repeats(path, "names", names, names)
    if len(names) > 255:
        raise ConfigError(f"{path}: at most 255 classes are supported, got {len(names)}")
    ignore = spec.get("ignore_index", IGNORE_INDEX)
    if not isinstance(ignore, int) or not len(names) <= ignore <= 255:
        raise ConfigError(
            f"{path}: ignore_index must be an int in [{len(names)}, 255], got {ignore!r}"
        )
    colors = spec.get("colors")
    if colors is None:
        palette = default_palette(len(names))
    else:
        ok = isinstance(colors, list) and len(colors) == len(names)
        ok = ok and all(isinstance(c, list) and len(c) == 3 for c in colors)
        if not ok:
            raise ConfigError(f"{path}: colors must be one [r, g, b] per class ({len(names)})")
        for name, colour in zip(names, colors, strict=True):
            if not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in colour
            ):
                raise ConfigError(
                    f"{path}: colors of class {name!r} is {colour!r}; each of r, g, b must be a "
                    "whole number in 0..255"
                )
        palette = [(int(c[0]), int(c[1]), int(c[2])) for c in colors]
        _refuse_repeats(path, "colors", palette, names)
    return names, ignore, palette


def _refuse_repeats(path: Path, key: str, values: list, names: list[str]) -> None:
    """Refuse a class name or colour given to two classes: their pixels would merge."""
    first: dict = {}
    for index, value in enumerate(values):
        if value in first:
            earlier = first[value]
            shown = list(value) if isinstance(value, tuple) else value
            raise ConfigError(
                f"{path}: {key} gives {shown!r} to class {earlier} ({names[earlier]!r}) and "
                f"class {index} ({names[index]!r}); each class needs its own (one class's "
                "pixels would be counted as the other's)"
            )
        first[value] = index


def _hash_fraction(seed: int, image_id: str) -> float:
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def folder_source(
    root: str | Path,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    name: str = "folder",
) -> Source:
    """List image/mask pairs; a flat folder is split into train/val/test by hash."""
    root = require_dir(Path(root), "folder dataset root")
    names, ignore, palette = read_classes(root / CLASSES_FILE)
    image_root = require_dir(root / "images", "image directory")
    mask_root = require_dir(root / "masks", "mask directory")
    subdirs = sorted(p.name for p in image_root.iterdir() if p.is_dir())
    pairs = []
    if subdirs:
        for split in subdirs:
            for image in list_images(image_root / split, IMAGE_SUFFIXES):
                pairs.append(_pair(split, image, mask_root / split))
    else:
        if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 - val_fraction:
            raise ConfigError(
                f"val_fraction {val_fraction} / test_fraction {test_fraction} must be in [0, 1) "
                "and sum to less than 1"
            )
        for image in list_images(image_root, IMAGE_SUFFIXES):
            u = _hash_fraction(seed, image.stem)
            split = (
                "val"
                if u < val_fraction
                else "test"
                if u < val_fraction + test_fraction
                else "train"
            )
            pairs.append(_pair(split, image, mask_root))
    return Source(
        name=name,
        root=root,
        classes=names,
        palette=palette,
        lut=identity_lut(len(names), (ignore,)),
        label_values=f"0-{len(names) - 1} and {ignore} (ignore)",
        pairs=pairs,
    )


def _pair(split: str, image: Path, mask_dir: Path) -> Pair:
    if image.name != image.name.strip():
        raise DataError(
            f"image file name {image.name!r} in {image.parent} starts or ends with white space, "
            "which the index cannot keep; rename it and its mask"
        )
    mask = mask_dir / f"{image.stem}.png"
    return Pair(split, image.stem, image, mask)
