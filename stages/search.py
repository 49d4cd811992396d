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
from dataclasses import replace

from segnas.device import keep_freed_memory, resolve_device
from segnas.errors import ConfigError
from segnas.pipeline.entry import DeclaredParams, run_stage
from segnas.pipeline.paths import SEARCH
from segnas.search.config import SearchConfig
from segnas.search.identity import search_identity
from segnas.search.layout import SearchLayout
from segnas.search.lock import directory_lock
from segnas.search.runner import run_search
from segnas.search.steps import (
    assemble,
    run_trial_index,
    sample_round,
    update_round,
)
from segnas.trial.spec import TrialSpec


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


def _step(
    args: argparse.Namespace,
    layout: SearchLayout,
    config: SearchConfig,
    spec: TrialSpec,
    params_hash: str,
    start: float,
) -> str:
    """One fan-out step (Snakemake jobs run them side by side under a shared lock)."""
    if args.step == "sample":
        samples = sample_round(layout, config, params_hash, args.round)
        return f"search: sampled round {args.round} ({len(samples)} architectures)"
    if args.step == "trial":
        result = run_trial_index(layout, config, params_hash, args.round, args.index, spec.build())
        return (
            f"search: round {args.round} index {args.index} {result.hash} "
            f"{result.status} reward {result.reward:.4f} "
            f"({time.monotonic() - start:.1f} s)"
        )
    if args.step == "update":
        stats = update_round(layout, config, params_hash, args.round)
        return f"search: updated the controller with round {args.round} {stats}"
    records = assemble(layout, config, params_hash, run_provenance=spec.provenance())
    return f"search: assembled {len(records)} architectures -> {SEARCH}"


def search(params: DeclaredParams, args: argparse.Namespace) -> str:
    """The whole search (``run``) or one fan-out step; the closing line."""
    keep_freed_memory()
    start = time.monotonic()
    layout = SearchLayout(SEARCH)
    config, extra, params_hash = search_identity(params, args.params)
    spec = TrialSpec.from_params(config, params, args.params)
    if spec.device != "cpu":
        spec = replace(spec, device=str(resolve_device(spec.device)))
    if (args.step or "run") != "run":
        with directory_lock(layout.root, params_hash, shared=True):
            return _step(args, layout, config, spec, params_hash, start)
    if getattr(args, "workers", None) is not None:
        if args.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {args.workers}")
        config = replace(config, workers=args.workers)
    records = run_search(layout, config, params_hash, spec, extra=extra)
    best = max(records, key=lambda r: r.result.reward)
    return (
        f"search: {len(records)} architectures in {config.rounds} rounds "
        f"({config.workers} workers, {time.monotonic() - start:.0f} s); best reward "
        f"{best.result.reward:.4f} ({best.result.hash}) -> {SEARCH}"
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("search", search, argv, _add_steps)


if __name__ == "__main__":
    sys.exit(main())
