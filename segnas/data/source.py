"""A raw dataset source: classes, how raw label values map to train ids, and file pairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .prepared import IGNORE_INDEX

INVALID = -1


@dataclass(frozen=True)
class Pair:
    """One image and its label file in split ``split``; ``id`` is unique over the dataset."""

    split: str
    id: str
    image: Path
    label: Path


@dataclass
class Source:
    """What ``prepare`` needs from a reader.

    ``lut`` maps each raw uint8 label value to a train id, ``IGNORE_INDEX`` or ``INVALID``
    (a value outside the class set, which is an error); ``label_values`` describes the
    allowed raw values for error messages.
    """

    name: str
    root: Path
    classes: list[str]
    palette: list[tuple[int, int, int]]
    lut: np.ndarray
    label_values: str
    pairs: list[Pair] = field(default_factory=list)


def identity_lut(num_classes: int, void_values: tuple[int, ...] = ()) -> np.ndarray:
    """LUT keeping 0..num_classes-1, sending ``void_values`` to 255, rejecting the rest."""
    lut = np.full(256, INVALID, dtype=np.int16)
    lut[:num_classes] = np.arange(num_classes)
    for value in void_values:
        lut[value] = IGNORE_INDEX
    return lut


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a directory, else a :class:`DataError` naming it."""
    if not path.is_dir():
        raise DataError(f"{what} {path} does not exist or is not a directory")
    return path


def list_images(directory: Path, suffixes: tuple[str, ...] = (".png",)) -> list[Path]:
    """Image files directly in ``directory``, sorted; an empty directory is an error."""
    require_dir(directory, "split directory")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in suffixes and p.is_file())
    if not files:
        raise DataError(f"split directory {directory} is empty (no {'/'.join(suffixes)} images)")
    return files


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """A deterministic, well-spread palette for datasets without colours."""
    rng = np.random.default_rng(num_classes)
    return [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(num_classes)]
