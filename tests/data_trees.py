"""Builders of tiny raw dataset trees for the data tests (not a test module)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def random_pair(seed: int, size=(24, 32), values=range(12)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    label = rng.choice(np.asarray(list(values), dtype=np.uint8), size=size)
    return image, label


def make_camvid_tree(root: Path, counts=None, size=(24, 32)) -> Path:
    """A CamVid-layout tree with random images and labels 0-11 (11 = void)."""
    counts = counts or {"train": 3, "val": 2, "test": 2}
    for split, count in counts.items():
        for i in range(count):
            image, label = random_pair(zlib.crc32(f"{split}/{i}".encode()), size)
            write_png(root / split / f"{split}_{i:03d}.png", image)
            write_png(root / f"{split}annot" / f"{split}_{i:03d}.png", label)
    return root


def make_cityscapes_tree(root: Path, size=(32, 64)) -> Path:
    """leftImg8bit + gtFine labelIds for train (2 cities) and val (1 city)."""
    layout = {"train": [("aachen", 0), ("aachen", 1), ("bremen", 0)], "val": [("lindau", 0)]}
    label_ids = np.array([0, 7, 8, 11, 21, 23, 24, 26, 33], dtype=np.uint8)
    for split, frames in layout.items():
        for city, frame in frames:
            stem = f"{city}_{frame:06d}_000019"
            rng = np.random.default_rng(frame + len(city))
            write_png(
                root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
                rng.integers(0, 256, (*size, 3), dtype=np.uint8),
            )
            write_png(
                root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png",
                rng.choice(label_ids, size=size),
            )
    return root
