"""Stage ``search``: controller + PPO over sampled architectures -> ``search/``.

Usage:
  python stages/search.py [--params params.yaml] [run] [--workers N]   the whole search, locally
  python stages/search.py sample --round R                             fan-out steps (Snakemake)
  python stages/search.py evaluate --round R --index I
  python stages/search.py update --round R
  python stages/search.py assemble
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from segnas.config import load_params, setting
from segnas.device import keep_freed_memory, resolve_device
from segnas.errors import ConfigError, SegnasError
from segnas.pipeline.paths import PREPARED, SEARCH, SPLIT, STEM_CACHE, require_project_root
from segnas.search.config import SearchConfig
from segnas.search.identity import search_identity
from segnas.search.lock import directory_lock
from segnas.search.runner import run_search
from segnas.search.steps import (
    EvaluatorSpec,
    SearchLayout,
    assemble,
    evaluate_index,
    sample_round,
    update_round,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    steps = parser.add_subparsers(dest="step", metavar="STEP")
    run = steps.add_parser("run", help="the whole search with a local worker pool (default)")
    run.add_argument("--workers", type=int, help="override search.workers")
    steps.add_parser("sample", help="sample round R").add_argument(
        "--round", type=int, required=True
    )
    evaluate = steps.add_parser("evaluate", help="evaluate architecture I of round R")
    evaluate.add_argument("--round", type=int, required=True)
    evaluate.add_argument("--index", type=int, required=True)
    steps.add_parser("update", help="PPO update with round R").add_argument(
        "--round", type=int, required=True
    )
    steps.add_parser("assemble", help="write archs.csv, top.json, metrics.json, final.pt")
    return parser


def _setup(params_path: str) -> tuple[SearchConfig, EvaluatorSpec, str, dict]:
    require_project_root(__file__)
    params = load_params(params_path)
    config, extra, params_hash = search_identity(params, params_path)
    spec = EvaluatorSpec(config.objective, config.eval, config.target)
    if config.objective == "train":
        from segnas.data.split import read_split_info

        dataset = read_split_info(SPLIT)["dataset"]
        spec = EvaluatorSpec(
            config.objective,
            config.eval,
            config.target,
            prepared_dir=str(PREPARED / dataset),
            split_dir=str(SPLIT),
            cache_dir=str(STEM_CACHE),
            stem_weights=extra["stem_weights"],
            device=str(setting(params, "device", params_path)),
        )
    return config, spec, params_hash, extra


def _step(
    args: argparse.Namespace,
    step: str,
    layout: SearchLayout,
    config: SearchConfig,
    spec: EvaluatorSpec,
    params_hash: str,
    start: float,
) -> None:
    """One fan-out step (Snakemake jobs run them side by side under a shared lock)."""
    if step == "sample":
        samples = sample_round(layout, config, params_hash, args.round)
        print(f"search: sampled round {args.round} ({len(samples)} architectures)")
    elif step == "evaluate":
        result = evaluate_index(layout, config, params_hash, args.round, args.index, spec.build())
        print(
            f"search: round {args.round} index {args.index} {result.hash} "
            f"{result.status} reward {result.reward:.4f} "
            f"({time.monotonic() - start:.1f} s)"
        )
    elif step == "update":
        stats = update_round(layout, config, params_hash, args.round)
        print(f"search: updated the controller with round {args.round} {stats}")
    else:
        records = assemble(layout, config, params_hash, run_provenance=spec.provenance())
        print(f"search: assembled {len(records)} architectures -> {SEARCH}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    keep_freed_memory()
    step = args.step or "run"
    start = time.monotonic()
    layout = SearchLayout(SEARCH)
    try:
        config, spec, params_hash, extra = _setup(args.params)
        if spec.device != "cpu":
            spec = EvaluatorSpec(**{**spec.__dict__, "device": str(resolve_device(spec.device))})
        if step == "run":
            if getattr(args, "workers", None) is not None:
                if args.workers < 1:
                    raise ConfigError(f"--workers must be at least 1, got {args.workers}")
                config = replace(config, workers=args.workers)
            records = run_search(layout, config, params_hash, spec, extra=extra)
            best = max(records, key=lambda r: r.result.reward)
            print(
                f"search: {len(records)} architectures in {config.rounds} rounds "
                f"({config.workers} workers, {time.monotonic() - start:.0f} s); best reward "
                f"{best.result.reward:.4f} ({best.result.hash}) -> {SEARCH}"
            )
        else:
            with directory_lock(layout.root, params_hash, shared=True):
                _step(args, step, layout, config, spec, params_hash, start)
    except SegnasError as exc:
        print(f"search: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
