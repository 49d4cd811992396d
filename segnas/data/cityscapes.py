"""CityScapes in its official layout; labelIds -> the 19 train ids via ``cityscapesscripts``.

``leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png`` pairs with
``gtFine/<split>/<city>/<stem>_gtFine_labelIds.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as CITYSCAPES_LABELS

from ..errors import DataError
from .prepared import IGNORE_INDEX
from .source import INVALID, Pair, Source, require_dir

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def cityscapes_classes() -> tuple[list[str], list[tuple[int, int, int]]]:
    """Names and colours of the train ids 0..18, from the official label table."""
    train = sorted(
        (label for label in CITYSCAPES_LABELS if 0 <= label.trainId < IGNORE_INDEX),
        key=lambda label: label.trainId,
    )
    return [label.name for label in train], [tuple(label.color) for label in train]


def cityscapes_lut() -> np.ndarray:
    """labelId -> train id (255 for ignored ids); ids absent from the table are invalid."""
    lut = np.full(256, INVALID, dtype=np.int16)
    for label in CITYSCAPES_LABELS:
        if 0 <= label.id < 256:
            train_id = label.trainId
            lut[label.id] = train_id if 0 <= train_id < IGNORE_INDEX else IGNORE_INDEX
    return lut


def cityscapes_source(
    root: str | Path, splits: Sequence[str] = ("train", "val"), name: str = "cityscapes"
) -> Source:
    """List the image/label pairs of a CityScapes tree; every split must be non-empty."""
    root = require_dir(Path(root), "CityScapes root")
    pairs = []
    for split in splits:
        image_dir = require_dir(root / "leftImg8bit" / split, f"CityScapes images of {split!r}")
        label_dir = require_dir(root / "gtFine" / split, f"CityScapes labels of {split!r}")
        images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise DataError(f"split directory {image_dir} is empty (no */*{IMAGE_SUFFIX})")
        for image in images:
            stem = image.name[: -len(IMAGE_SUFFIX)]
            label = label_dir / image.parent.name / f"{stem}{LABEL_SUFFIX}"
            pairs.append(Pair(split, stem, image, label))
    classes, palette = cityscapes_classes()
    return Source(
        name=name,
        root=root,
        classes=classes,
        palette=palette,
        lut=cityscapes_lut(),
        label_values="the CityScapes labelIds 0-33",
        pairs=pairs,
    )
