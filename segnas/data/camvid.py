"""CamVid in the 11-class SegNet layout: ``<split>/`` and ``<split>annot/`` PNG pairs.

Label values 0-10 are the classes, 11 is void (mapped to 255).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .prepared import CAMVID_CLASSES, CAMVID_PALETTE
from .source import Pair, Source, identity_lut, list_images, require_dir

CAMVID_VOID = 11


def camvid_source(
    root: str | Path, splits: Sequence[str] = ("train", "val", "test"), name: str = "camvid"
) -> Source:
    """List the image/label pairs of a CamVid-layout tree; every split must be non-empty."""
    root = require_dir(Path(root), "CamVid root")
    pairs = []
    for split in splits:
        label_dir = require_dir(root / f"{split}annot", f"CamVid label directory for {split!r}")
        for image in list_images(root / split):
            label = label_dir / image.name
            pairs.append(Pair(split, image.stem, image, label))
    return Source(
        name=name,
        root=root,
        classes=list(CAMVID_CLASSES),
        palette=[tuple(c) for c in CAMVID_PALETTE],
        lut=identity_lut(len(CAMVID_CLASSES), (CAMVID_VOID,)),
        label_values=f"0-{len(CAMVID_CLASSES) - 1} and {CAMVID_VOID} (void)",
        pairs=pairs,
    )
