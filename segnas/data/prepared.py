"""Reading a prepared dataset (``data/prepared/<dataset>/``): index, classes, file paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..io import read_json

IGNORE_INDEX = 255
INDEX_FILE = "index.csv"
SUMMARY_FILE = "summary.json"
SPLITS = ("train", "val", "test")

CAMVID_CLASSES = (
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign_symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
)
CAMVID_PALETTE = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)


def pixel_column(class_name: str) -> str:
    """Name of the index column holding the per-image pixel count of ``class_name``."""
    return f"pixels_{class_name}"


@dataclass
class PreparedDataset:
    """A prepared dataset: ``index`` has one row per image (id, split, paths, size, counts)."""

    root: Path
    index: pd.DataFrame
    classes: list[str]
    palette: list[tuple[int, int, int]]
    ignore_index: int = IGNORE_INDEX
    summary: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = self.index.set_index("id", drop=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def splits(self) -> list[str]:
        """Splits present, in the order train, val, test, then any others."""
        present = list(dict.fromkeys(self.index["split"]))
        return [s for s in SPLITS if s in present] + [s for s in present if s not in SPLITS]

    def ids(self, split: str) -> list[str]:
        """Image ids of ``split`` in index order."""
        if split not in self.splits:
            raise DataError(
                f"{self.root / INDEX_FILE}: no split {split!r}; available: {self.splits}"
            )
        return self.index.loc[self.index["split"] == split, "id"].tolist()

    def _row(self, image_id: str) -> pd.Series:
        try:
            return self._by_id.loc[image_id]
        except KeyError:
            raise DataError(f"{self.root / INDEX_FILE}: unknown image id {image_id!r}") from None

    def image_path(self, image_id: str) -> Path:
        """Absolute path of the RGB PNG of ``image_id``."""
        return self.root / self._row(image_id)["image"]

    def label_path(self, image_id: str) -> Path:
        """Absolute path of the label PNG (uint8 train ids, 255 = ignore) of ``image_id``."""
        return self.root / self._row(image_id)["label"]

    def class_pixels(self, split: str) -> dict[str, int]:
        """Pixel count per class over ``split``."""
        rows = self.index[self.index["split"] == split]
        return {name: int(rows[pixel_column(name)].sum()) for name in self.classes}


def load_prepared(root: str | Path) -> PreparedDataset:
    """Open ``data/prepared/<dataset>/``; errors name the missing or malformed file."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"prepared dataset {root} does not exist; run the prepare stage first")
    summary = read_json(root / SUMMARY_FILE)
    index_path = root / INDEX_FILE
    try:
        index = pd.read_csv(index_path, dtype={"id": str, "split": str})
    except FileNotFoundError:
        raise DataError(f"{index_path} does not exist; rerun the prepare stage") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{index_path} is not a readable CSV ({exc}); rerun prepare") from exc
    try:
        classes = list(summary["classes"])
        palette = [tuple(int(c) for c in rgb) for rgb in summary["palette"]]
        ignore_index = int(summary.get("ignore_index", IGNORE_INDEX))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"{root / SUMMARY_FILE} lacks classes/palette ({exc}); rerun prepare"
        ) from exc
    needed = ["id", "split", "image", "label", "height", "width"]
    needed += [pixel_column(c) for c in classes]
    missing = [c for c in needed if c not in index.columns]
    if missing:
        raise DataError(f"{index_path} lacks columns {missing}; rerun the prepare stage")
    return PreparedDataset(root, index, classes, palette, ignore_index, summary)
