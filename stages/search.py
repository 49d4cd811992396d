"""Stage ``search``: controller + PPO over sampled architectures -> ``search/``.

Usage:
  python stages/search.py [--params params.yaml] [run] [--workers N]   the whole search, locally
  python stages/search.py sample --round R                             fan-out steps (Snakemake)
  python stages/search.py trial --round R --index I
  python stages/search.py update --round R
  python stages/search.py assemble
"""

from __future__ import annotations

import argparse
import sys
import time

from segnas.device import keep_freed_memory
from segnas.pipeline.entry import DeclaredParams, run_stage
from segnas.pipeline.paths import SEARCH
from segnas.search.layout import SearchLayout
from segnas.search.stage import plan_search, run_fan_out_step, run_whole_search


def _add_steps(parser: argparse.ArgumentParser) -> None:
    steps = parser.add_subparsers(dest="step", metavar="STEP")
    run = steps.add_parser("run", help="the whole search with a local worker pool (default)")
    run.add_argument("--workers", type=int, help="override search.workers")
    steps.add_parser("sample", help="sample round R").add_argument(
        "--round", type=int, required=True
    )
    trial = steps.add_parser("trial", help="the trial of architecture I of round R")
    trial.add_argument("--round", type=int, required=True)
    trial.add_argument("--index", type=int, required=True)
    steps.add_parser("update", help="PPO update with round R").add_argument(
        "--round", type=int, required=True
    )
    steps.add_parser("assemble", help="write archs.csv, top.json, metrics.json, final.pt")


def search(params: DeclaredParams, args: argparse.Namespace) -> str:
    """The whole search (``run``) or one fan-out step; the closing line."""
    keep_freed_memory()
    start = time.monotonic()
    layout = SearchLayout(SEARCH)
    plan = plan_search(params, args.params)
    if (args.step or "run") == "run":
        return run_whole_search(layout, plan, getattr(args, "workers", None), start)
    round_index, index = getattr(args, "round", None), getattr(args, "index", None)
    return run_fan_out_step(layout, plan, args.step, round_index, index, start)


def main(argv: list[str] | None = None) -> int:
    return run_stage("search", search, argv, _add_steps)


if __name__ == "__main__":
    sys.exit(main())
