"""Stage ``compare``: controller vs random search in two setups -> ``compare/``.

Usage:
  python stages/compare.py [--params params.yaml] [run]              every step, locally
  python stages/compare.py sample                                    fan-out steps (Snakemake)
  python stages/compare.py trial --group G --setup S --index I
  python stages/compare.py assemble
"""

from __future__ import annotations

import argparse
import sys
import time

from segnas.compare.config import CompareConfig
from segnas.compare.layout import GROUPS, SETUPS, CompareLayout
from segnas.compare.stage import plan_compare, run_compare_step, run_one_trial
from segnas.config import load_config, section
from segnas.device import keep_freed_memory
from segnas.pipeline.entry import DeclaredParams, run_stage
from segnas.pipeline.paths import COMPARE, SEARCH_CONTROLLER


def _add_steps(parser: argparse.ArgumentParser) -> None:
    steps = parser.add_subparsers(dest="step", metavar="STEP")
    steps.add_parser("run", help="every step with a local worker pool (default)")
    steps.add_parser("sample", help="draw the 2N architectures")
    trial = steps.add_parser("trial", help="one trial")
    trial.add_argument("--group", choices=GROUPS, required=True)
    trial.add_argument("--setup", choices=SETUPS, required=True)
    trial.add_argument("--index", type=int, required=True)
    steps.add_parser("assemble", help="write compare.csv and metrics.json")


def compare(params: DeclaredParams, args: argparse.Namespace) -> str:
    """Every step locally (``run``) or one fan-out step; the closing line."""
    keep_freed_memory()
    start = time.monotonic()
    layout = CompareLayout(COMPARE)
    config = load_config(CompareConfig, section(params, "compare", args.params), "compare")
    plan = plan_compare(params, args.params, config, controller_path=SEARCH_CONTROLLER)
    if args.step == "trial":
        return run_one_trial(layout, plan, args.group, args.setup, args.index, start)
    return run_compare_step(layout, plan, args.step or "run", start)


def main(argv: list[str] | None = None) -> int:
    return run_stage("compare", compare, argv, _add_steps)


if __name__ == "__main__":
    sys.exit(main())
