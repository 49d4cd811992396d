"""Smaller stem-cache crops against the recipe bench's reference: one phase-1 epoch over a cache
built at another ``cache_stem.crop_size``, on the same architectures, seeds and reference as a
finished ``bench/bench_recipes.py`` run.

Run from a project whose data/prepared and data/split are the recipe bench's and whose
cache/stem was built from ``--params`` with the crop size under test:

    python bench/bench_cache_crops.py --params params.yaml \
        --recipes docs/results/recipes-camvid-cpu --out crops96.json

Prints the recipe's CPU seconds per architecture and Spearman's rho (95 % bootstrap CI) against
the recipes run's reference (the mean full-val reward over its last phase-2 checkpoints).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

from bench_recipes import _WORKER, _init_worker, run_trajectory

from segnas.config import load_config, load_params, section
from segnas.io import read_json, write_json
from segnas.seeds import derive_seed
from segnas.space import DEFAULT_SPACE
from segnas.stats import spearman_ci
from segnas.trial.recipe import TrialSetup


def _one(index: int, text: str, setup: TrialSetup, seed: int) -> dict:
    data = _WORKER["data"]
    path = {"name": "crop", "cache": len(data.cache), "phase1": 1, "phase2": 0}
    result = run_trajectory(DEFAULT_SPACE.parse(text), setup, data, seed, path, {"full": None})
    last = result["checkpoints"][-1]
    return {
        "index": index,
        "reward": last["val"]["full"]["reward"],
        "cpu_s": result["build_cpu_s"] + last["train_cpu_s"] + last["val"]["full"]["cpu_s"],
    }


def reference_rewards(recipes: Path, count: int) -> list[float]:
    """Each architecture's reference reward in a finished recipes run."""
    header = read_json(recipes / "recipes.json")
    last = max(p["phase2"] for p in header["trajectories"] if p["name"] == "full")
    window = [int(e) for e in header["reference"].rsplit("epochs ", 1)[1].split("-")]
    rewards = []
    for i in range(count):
        points = read_json(recipes / "archs" / f"a{i:03d}.json")["trajectories"]["full"]
        by_epoch = {p["epoch"]: p for p in points["checkpoints"] if p["phase"] == 2}
        epochs = range(window[0], min(window[1], last) + 1)
        rewards.append(statistics.mean(by_epoch[e]["val"]["full"]["reward"] for e in epochs))
    return rewards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--recipes", type=Path, required=True, help="a finished recipes run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    header = read_json(args.recipes / "recipes.json")
    setup = replace(
        load_config(TrialSetup, section(params, "search", args.params)["eval"], "search.eval"),
        measure_latency=False,
    )
    count, seed = header["archs"], header["seed"]
    texts = [DEFAULT_SPACE.sample(derive_seed(seed, "recipes", i)).to_text() for i in range(count)]
    with ProcessPoolExecutor(
        args.workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(str(params["stem"]["weights"]),),
    ) as pool:
        futures = [
            pool.submit(_one, i, texts[i], setup, derive_seed(seed, "train", i))
            for i in range(count)
        ]
        rows = [future.result() for future in futures]
    reference = reference_rewards(args.recipes, count)
    rho = spearman_ci([r["reward"] for r in rows], reference, seed=0).to_dict()
    cost = statistics.mean(r["cpu_s"] for r in rows)
    crop = params["cache_stem"]["crop_size"]
    write_json(args.out, {"crop_size": crop, "cpu_s_per_arch": cost, "rho": rho, "archs": rows})
    print(
        f"cache crop {crop}: {cost:.1f} core-s / arch, mean reward "
        f"{statistics.mean(r['reward'] for r in rows):.4f}, rho {rho['value']:.3f} "
        f"[{rho['low']:.2f}, {rho['high']:.2f}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
