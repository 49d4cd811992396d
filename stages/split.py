"""Stage ``split``: the search dataset's train split -> meta-train / meta-val (``data/split/``).

Usage: python stages/split.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys

from segnas.config import section, setting
from segnas.data.prepared import load_prepared
from segnas.data.split import stable_split, write_split
from segnas.pipeline.entry import DeclaredParams, run_stage
from segnas.pipeline.paths import PREPARED, SPLIT


def split(params: DeclaredParams, args: argparse.Namespace) -> str:
    """Divide the search dataset's train split; the closing line."""
    spec = section(params, "split", args.params)
    seed = int(setting(params, "seed", args.params))
    dataset, val_fraction = str(spec["dataset"]), float(spec["val_fraction"])
    prepared = load_prepared(PREPARED / dataset)
    train_ids, val_ids = stable_split(prepared.ids("train"), val_fraction, seed)
    info = {"dataset": dataset, "seed": seed, "val_fraction": val_fraction, "source_split": "train"}
    write_split(SPLIT, train_ids, val_ids, info)
    return (
        f"split: {dataset} train {len(train_ids) + len(val_ids)} -> meta-train {len(train_ids)}, "
        f"meta-val {len(val_ids)} -> {SPLIT}"
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("split", split, argv)


if __name__ == "__main__":
    sys.exit(main())
