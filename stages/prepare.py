"""Stage ``prepare``: every dataset under params ``datasets`` -> ``data/prepared/<name>/``.

Usage: python stages/prepare.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

from segnas.config import section, setting
from segnas.data.prepare import prepare_dataset
from segnas.pipeline.entry import DeclaredParams, run_stage
from segnas.pipeline.paths import PREPARED


def prepare(params: DeclaredParams, args: argparse.Namespace) -> str:
    """Prepare every configured dataset, one progress line each; the closing line."""
    datasets = section(params, "datasets", args.params)
    seed = int(setting(params, "seed", args.params))
    start = time.monotonic()
    for name, spec in datasets.items():
        summary = prepare_dataset(name, spec, PREPARED / name, seed)
        counts = ", ".join(f"{split} {n}" for split, n in summary["counts"].items())
        print(
            f"prepare: {name}: {counts}; {summary['num_classes']} classes; "
            f"{len(summary['skipped'])} skipped -> {PREPARED / name}"
        )
    return f"prepare: {len(datasets)} dataset(s) in {time.monotonic() - start:.1f} s"


def main(argv: list[str] | None = None) -> int:
    return run_stage("prepare", prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
