"""Stage ``prepare``: every dataset under params ``datasets`` -> ``data/prepared/<name>/``.

Usage: python stages/prepare.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

from segnas.config import load_params, section, setting
from segnas.data.prepare import prepare_dataset
from segnas.errors import SegnasError
from segnas.pipeline.paths import PREPARED, require_project_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    try:
        require_project_root(__file__)
        params = load_params(args.params)
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
    except SegnasError as exc:
        print(f"prepare: error: {exc}", file=sys.stderr)
        return 2
    print(f"prepare: {len(datasets)} dataset(s) in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
