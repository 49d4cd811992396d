"""Seeded, exact and stable meta-train / meta-val split of the search dataset's train split.

Items are ordered by SHA-256 of ``"<seed>:<id>"``; the first ``round(n * val_fraction)`` go to
meta-val. Adding or removing k items therefore moves at most k existing items between sides.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError, DataError
from ..io import read_json, remove_stale_temps, write_json, write_text

TRAIN_FILE = "meta_train.txt"
VAL_FILE = "meta_val.txt"
INFO_FILE = "split.json"


def _key(seed: int, image_id: str) -> bytes:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).digest()


def validation_count(total: int, val_fraction: float) -> int:
    """Number of meta-val items: ``val_fraction * total`` rounded half up (2,975 -> 298)."""
    return int(math.floor(total * val_fraction + 0.5))


def stable_split(ids: Sequence[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split ``ids`` into (train_ids, val_ids), each in the input order.

    Raises :class:`ConfigError` for a fraction outside (0, 1) and :class:`DataError` for
    duplicate ids or a split that would leave either side empty.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"split.val_fraction must be in (0, 1), got {val_fraction!r}")
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise DataError(f"split: duplicate image ids {dupes}")
    n_val = validation_count(len(ids), val_fraction)
    if n_val == 0 or n_val == len(ids):
        raise DataError(
            f"split: {len(ids)} images with val_fraction {val_fraction} leave one side empty; "
            "use more images or another val_fraction"
        )
    ranked = sorted(ids, key=lambda i: _key(seed, i))
    val = set(ranked[:n_val])
    return [i for i in ids if i not in val], [i for i in ids if i in val]


def write_split(
    split_dir: str | Path, train_ids: Sequence[str], val_ids: Sequence[str], info: dict
) -> None:
    """Write ``meta_train.txt``, ``meta_val.txt`` (one id a line) and ``split.json``.

    ``split.json`` is removed first and written last, so an interrupted run never leaves a
    mix of old and new id files that reads as a complete split.
    """
    split_dir = Path(split_dir)
    for name in (INFO_FILE, TRAIN_FILE, VAL_FILE):
        remove_stale_temps(split_dir / name)
    (split_dir / INFO_FILE).unlink(missing_ok=True)
    write_text(split_dir / TRAIN_FILE, "".join(f"{i}\n" for i in train_ids))
    write_text(split_dir / VAL_FILE, "".join(f"{i}\n" for i in val_ids))
    write_json(
        split_dir / INFO_FILE,
        {**info, "counts": {"meta_train": len(train_ids), "meta_val": len(val_ids)}},
    )


def read_split_info(split_dir: str | Path) -> dict:
    """The ``split.json`` of ``split_dir`` (dataset, seed, val_fraction, counts)."""
    return read_json(Path(split_dir) / INFO_FILE)


def check_split_params(split_dir: str | Path, split_params: dict, seed: int) -> dict:
    """The ``split.json`` of ``split_dir``, refused unless it was made from ``split_params``
    (dataset, val_fraction) and ``seed``: a stage run by hand after a failed split must not use
    the split of another dataset."""
    info = read_split_info(split_dir)
    expected = {
        "dataset": split_params["dataset"],
        "val_fraction": float(split_params["val_fraction"]),
        "seed": seed,
    }
    differ = {k: v for k, v in expected.items() if info.get(k) != v}
    if differ:
        found = ", ".join(f"{k} {info.get(k)!r}" for k in differ)
        wanted = ", ".join(f"{k} {v!r}" for k, v in differ.items())
        raise DataError(
            f"{split_dir} was made for {found} but the params ask for {wanted}; run the split "
            "stage first"
        )
    return info


def load_split(split_dir: str | Path) -> tuple[list[str], list[str]]:
    """(meta_train ids, meta_val ids), checked against the counts in ``split.json``."""
    split_dir = Path(split_dir)
    info = read_split_info(split_dir)
    sides = []
    for name, key in ((TRAIN_FILE, "meta_train"), (VAL_FILE, "meta_val")):
        path = split_dir / name
        try:
            ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except FileNotFoundError:
            raise DataError(f"{path} does not exist; rerun the split stage") from None
        ids = [i for i in ids if i]
        expected = info.get("counts", {}).get(key)
        if expected != len(ids):
            raise DataError(
                f"{path} lists {len(ids)} ids but {split_dir / INFO_FILE} says {expected}; "
                "rerun the split stage"
            )
        sides.append(ids)
    return sides[0], sides[1]
