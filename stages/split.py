"""Stage ``split``: the search dataset's train split -> meta-train / meta-val (``data/split/``).

Usage: python stages/split.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys

from segnas.config import load_params, section, setting
from segnas.data.prepared import load_prepared
from segnas.data.split import stable_split, write_split
from segnas.errors import SegnasError
from segnas.pipeline.paths import PREPARED, SPLIT, require_project_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    try:
        require_project_root(__file__)
        params = load_params(args.params)
        spec = section(params, "split", args.params)
        seed = int(setting(params, "seed", args.params))
        dataset = str(spec["dataset"])
        val_fraction = float(spec["val_fraction"])
        prepared = load_prepared(PREPARED / dataset)
        train_ids, val_ids = stable_split(prepared.ids("train"), val_fraction, seed)
        write_split(
            SPLIT,
            train_ids,
            val_ids,
            {
                "dataset": dataset,
                "seed": seed,
                "val_fraction": val_fraction,
                "source_split": "train",
            },
        )
    except SegnasError as exc:
        print(f"split: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"split: {dataset} train {len(train_ids) + len(val_ids)} -> meta-train {len(train_ids)}, "
        f"meta-val {len(val_ids)} -> {SPLIT}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
