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
from pathlib import Path

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
from segnas.config import load_config, load_params, section, setting
from segnas.device import keep_freed_memory, resolve_device
from segnas.errors import SegnasError
from segnas.pipeline.paths import COMPARE, PREPARED, SPLIT, STEM_CACHE, require_project_root
from segnas.search.config import SearchConfig
from segnas.search.controller import load_controller
from segnas.trial.spec import TrialSpec


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    steps = parser.add_subparsers(dest="step", metavar="STEP")
    steps.add_parser("run", help="every step with a local worker pool (default)")
    steps.add_parser("sample", help="draw the 2N architectures")
    trial = steps.add_parser("trial", help="one trial")
    trial.add_argument("--group", choices=GROUPS, required=True)
    trial.add_argument("--setup", choices=SETUPS, required=True)
    trial.add_argument("--index", type=int, required=True)
    steps.add_parser("assemble", help="write compare.csv and metrics.json")
    return parser


def _setup(params_path: str) -> tuple[CompareConfig, SearchConfig, dict, str]:
    require_project_root(__file__)
    params = load_params(params_path)
    config = load_config(CompareConfig, section(params, "compare", params_path), "compare")
    search = SearchConfig.from_params(
        section(params, "search", params_path), int(setting(params, "seed", params_path))
    )
    require_controller(search, params_path)
    search, search_hash = check_controller_matches(
        Path(config.controller), params, params_path, "compare"
    )
    stem_weights = str(section(params, "stem", params_path)["weights"])
    device = str(resolve_device(str(setting(params, "device", params_path))))
    base = TrialSpec(search.objective, search.eval, search.target, device=device)
    if search.objective == "train":
        from segnas.data.split import read_split_info

        dataset = read_split_info(SPLIT)["dataset"]
        base = TrialSpec(
            search.objective,
            search.eval,
            search.target,
            prepared_dir=str(PREPARED / dataset),
            split_dir=str(SPLIT),
            cache_dir=str(STEM_CACHE),
            stem_weights=stem_weights,
            device=device,
        )
    specs = {
        "search": base,
        "long": replace(base, setup=long_setup(search.eval, config.long_phase2_epochs)),
    }
    return config, search, specs, compare_hash(search_hash, config)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    keep_freed_memory()
    step = args.step or "run"
    start = time.monotonic()
    layout = CompareLayout(COMPARE)
    try:
        config, search, specs, params_hash = _setup(args.params)
        if step in ("run", "sample"):
            controller = load_controller(config.controller)
            if step == "sample":
                write_samples(layout, controller, config, search.seed, params_hash)
                print(f"compare: sampled {config.num_archs} + {config.num_archs} architectures")
                return 0
            metrics = run_compare(layout, controller, config, specs, search.seed, params_hash)
        elif step == "trial":
            result = run_compare_trial(
                layout,
                params_hash,
                search.seed,
                args.group,
                args.setup,
                args.index,
                specs[args.setup].build(),
            )
            print(
                f"compare: {args.group} {args.setup} #{args.index} {result.hash} "
                f"{result.status} reward {result.reward:.4f} ({time.monotonic() - start:.1f} s)"
            )
            return 0
        else:
            provenance = specs["search"].provenance()
            metrics = assemble(layout, config, params_hash, run_provenance=provenance)
    except SegnasError as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return 2
    rho = {g: metrics[g]["spearman_rho"] for g in GROUPS}
    print(
        f"compare: {4 * config.num_archs} evaluations; Spearman rho search vs long: "
        + ", ".join(f"{g} {'n/a' if r is None else f'{r:.3f}'}" for g, r in rho.items())
        + f" ({time.monotonic() - start:.0f} s) -> {COMPARE}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
