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
from dataclasses import replace

from segnas.compare import (
    GROUPS,
    SETUPS,
    CompareLayout,
    assemble,
    check_controller_matches,
    long_setup,
    require_controller,
    run_compare,
    run_compare_trial,
    write_samples,
)
from segnas.compareconfig import CompareConfig, compare_hash
from segnas.config import load_config, section, setting
from segnas.device import keep_freed_memory, resolve_device
from segnas.pipeline.entry import DeclaredParams, run_stage
from segnas.pipeline.paths import COMPARE, SEARCH_CONTROLLER
from segnas.search.config import SearchConfig
from segnas.search.controller import load_controller
from segnas.trial.spec import TrialSpec


def _add_steps(parser: argparse.ArgumentParser) -> None:
    steps = parser.add_subparsers(dest="step", metavar="STEP")
    steps.add_parser("run", help="every step with a local worker pool (default)")
    steps.add_parser("sample", help="draw the 2N architectures")
    trial = steps.add_parser("trial", help="one trial")
    trial.add_argument("--group", choices=GROUPS, required=True)
    trial.add_argument("--setup", choices=SETUPS, required=True)
    trial.add_argument("--index", type=int, required=True)
    steps.add_parser("assemble", help="write compare.csv and metrics.json")


def _setup(
    params: DeclaredParams, params_path: str
) -> tuple[CompareConfig, SearchConfig, dict[str, TrialSpec], str]:
    """The compare params, today's search (its controller checked to be today's), the two
    setups' trial specs and the comparison's params hash."""
    config = load_config(CompareConfig, section(params, "compare", params_path), "compare")
    search = SearchConfig.from_params(
        section(params, "search", params_path), int(setting(params, "seed", params_path))
    )
    require_controller(search, params_path)
    search, search_hash = check_controller_matches(
        SEARCH_CONTROLLER, params, params_path, "compare"
    )
    base = TrialSpec.from_params(search, params, params_path)
    base = replace(base, device=str(resolve_device(base.device)))
    specs = {
        "search": base,
        "long": replace(base, setup=long_setup(search.eval, config.long_phase2_epochs)),
    }
    return config, search, specs, compare_hash(search_hash, config)


def compare(params: DeclaredParams, args: argparse.Namespace) -> str:
    """Every step locally (``run``) or one fan-out step; the closing line."""
    keep_freed_memory()
    step, start = args.step or "run", time.monotonic()
    layout = CompareLayout(COMPARE)
    config, search, specs, params_hash = _setup(params, args.params)
    if step == "trial":
        result = run_compare_trial(
            layout,
            params_hash,
            search.seed,
            args.group,
            args.setup,
            args.index,
            specs[args.setup].build(),
        )
        return (
            f"compare: {args.group} {args.setup} #{args.index} {result.hash} "
            f"{result.status} reward {result.reward:.4f} ({time.monotonic() - start:.1f} s)"
        )
    if step == "assemble":
        provenance = specs["search"].provenance()
        metrics = assemble(layout, config, params_hash, run_provenance=provenance)
    else:
        controller = load_controller(SEARCH_CONTROLLER)
        if step == "sample":
            write_samples(layout, controller, config, search.seed, params_hash)
            return f"compare: sampled {config.num_archs} + {config.num_archs} architectures"
        metrics = run_compare(layout, controller, config, specs, search.seed, params_hash)
    rho = {g: metrics[g]["spearman_rho"] for g in GROUPS}
    return (
        f"compare: {4 * config.num_archs} evaluations; Spearman rho search vs long: "
        + ", ".join(f"{g} {'n/a' if r is None else f'{r:.3f}'}" for g, r in rho.items())
        + f" ({time.monotonic() - start:.0f} s) -> {COMPARE}"
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("compare", compare, argv, _add_steps)


if __name__ == "__main__":
    sys.exit(main())
