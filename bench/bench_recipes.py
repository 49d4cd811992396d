"""Search-evaluation recipes: cost (core-seconds per architecture) against fidelity (Spearman's
rho between each recipe's reward and a long reference training of the same architectures).

Run from a project directory whose data/prepared, data/split and cache/stem were built from
``--params`` (e.g. the camvid-cpu configuration, ``dvc repro cache_stem``):

    python bench/bench_recipes.py --params params.yaml --archs 12 --workers 2 --out bench_recipes

Every architecture (uniformly sampled, seeded) is trained along a few *trajectories*; the
model is scored on meta-val at checkpoints along each. Phase 1 and phase 2 use Adam at a
constant learning rate and seed their batches per epoch, and scoring does not change the
model, so the score at a checkpoint is exactly the reward of the recipe that stops there
(`--check` proves it against ``run_trial`` for one recipe):

* ``full``: the whole stem cache, phase 1 for ``--phase1-epochs`` epochs, then phase 2 for
  ``--reference-epochs`` epochs; its end is the reference: the mean reward of its last
  ``--reference-window`` phase-2 checkpoints (one checkpoint's reward moves by several points
  from epoch to epoch), and, reported beside it, the last checkpoint alone;
* ``pass``: the first meta-train pass of the cache (``cache_stem.num_samples`` = meta-train
  size; the cache is the same for any prefix), phase 1 for 2 epochs, then phase 2 for 2;
* ``p2``: no phase 1, phase 2 for 2 epochs.

Every checkpoint is scored at the prepared meta-val size and at half of it. A recipe's cost is
its training CPU seconds, plus one scoring, plus the network build. Results per architecture
go to ``<out>/archs/`` as they finish (a rerun continues); the table to ``<out>/recipes.json``
and ``<out>/recipes.md``.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import torch

from segnas.config import load_config, load_params, section
from segnas.data.split import read_split_info
from segnas.device import keep_freed_memory
from segnas.io import read_json, write_json, write_text
from segnas.metrics import reward_from_scores
from segnas.seeds import derive_seed
from segnas.space import DEFAULT_SPACE, Genotype
from segnas.stats import spearman_ci
from segnas.trial.data import TrialData
from segnas.trial.phases import deterministic, train_phase1, train_phase2, validate
from segnas.trial.recipe import TrialSetup
from segnas.trial.reward import build_search_network, run_trial

CORES = 2
_WORKER: dict = {}


class CachePrefix:
    """The first ``size`` samples of a stem cache: the cache ``cache_stem`` would build with
    ``num_samples: size`` (sample ``i`` depends on the seed and ``i`` only)."""

    def __init__(self, cache: object, size: int) -> None:
        if size > len(cache):
            raise ValueError(f"the cache holds {len(cache)} samples, not {size}")
        self.cache, self.size = cache, size

    def __len__(self) -> int:
        return self.size

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.cache.batch(indices)


def _open_data(stem_weights: str) -> TrialData:
    dataset = read_split_info("data/split")["dataset"]
    return TrialData.from_paths(
        f"data/prepared/{dataset}", "data/split", "cache/stem", stem_weights=stem_weights
    )


def _init_worker(stem_weights: str) -> None:
    keep_freed_memory()
    _WORKER["data"] = _open_data(stem_weights)


def _half(size: tuple[int, int]) -> tuple[int, int]:
    return (size[0] // 2) // 8 * 8, (size[1] // 2) // 8 * 8


def trajectories(
    setup: TrialSetup,
    cache_size: int,
    pass_size: int,
    reference_epochs: int,
    cache_sizes: tuple[int, ...] = (),
) -> list[dict]:
    """The trained paths: name, cache samples, phase-1 and phase-2 epochs; ``cache_sizes`` adds
    one phase-1 epoch over each of those cache prefixes (named ``c<size>``)."""
    return [
        {
            "name": "full",
            "cache": cache_size,
            "phase1": setup.phase1_epochs,
            "phase2": reference_epochs,
        },
        {"name": "pass", "cache": pass_size, "phase1": 2, "phase2": 2},
        {"name": "p2", "cache": 0, "phase1": 0, "phase2": 2},
        *({"name": f"c{size}", "cache": size, "phase1": 1, "phase2": 0} for size in cache_sizes),
    ]


def run_trajectory(
    genotype: Genotype,
    setup: TrialSetup,
    data: TrialData,
    seed: int,
    path: dict,
    val_sizes: dict[str, tuple[int, int] | None],
) -> dict:
    """Train along ``path`` and score every epoch end at each of ``val_sizes``.

    Returns the network-build CPU seconds and one checkpoint per epoch end: phase, epoch,
    training CPU seconds so far (scoring excluded) and, per val size, reward, mIoU and the
    scoring's CPU seconds.
    """
    device = torch.device("cpu")
    if path["cache"]:
        data = copy.copy(data)
        data.cache = CachePrefix(data.cache, path["cache"])
    recipe = replace(setup, phase1_epochs=path["phase1"], phase2_epochs=path["phase2"])
    checkpoints: list[dict] = []
    clock = {"train": 0.0, "since": 0.0}

    def score(phase: int, epoch: int) -> None:
        clock["train"] += time.process_time() - clock["since"]
        point = {"phase": phase, "epoch": epoch, "train_cpu_s": clock["train"], "val": {}}
        for name, size in val_sizes.items():
            start = time.process_time()
            scores = validate(model, data, replace(recipe, val_size=size), device)
            point["val"][name] = {
                "reward": reward_from_scores(scores),
                "miou": float(scores["miou"]),
                "cpu_s": time.process_time() - start,
            }
        checkpoints.append(point)
        clock["since"] = time.process_time()

    with deterministic(recipe.threads, device):
        start = time.process_time()
        model = build_search_network(genotype, recipe, data, seed)
        build_cpu = time.process_time() - start
        clock["since"] = time.process_time()
        if recipe.phase1_epochs:
            train_phase1(
                model, data, recipe, derive_seed(seed, "phase1"), device, partial(score, 1)
            )
        if recipe.phase2_epochs:
            train_phase2(
                model, data, recipe, derive_seed(seed, "phase2"), device, partial(score, 2)
            )
    return {"build_cpu_s": build_cpu, "checkpoints": checkpoints}


def _evaluate_arch(index: int, text: str, setup: TrialSetup, seed: int, paths: list[dict]) -> dict:
    data: TrialData = _WORKER["data"]
    genotype = DEFAULT_SPACE.parse(text)
    val_sizes = {"full": setup.val_size, "half": _half(_prepared_size(data))}
    start = time.perf_counter()
    record = {"index": index, "genotype": text, "hash": genotype.hash, "trajectories": {}}
    for path in paths:
        record["trajectories"][path["name"]] = {
            **path,
            **run_trajectory(genotype, setup, data, seed, path, val_sizes),
        }
    record["wall_s"] = time.perf_counter() - start
    return record


def _prepared_size(data: TrialData) -> tuple[int, int]:
    image, _ = data.val_batches(None, 2)[0]
    return int(image.shape[-2]), int(image.shape[-1])


def recipes_from(records: list[dict], reference: tuple[str, int, int], window: int) -> list[dict]:
    """One row per (trajectory checkpoint, val size): cost, and rho against the reference (the
    mean full-val reward of trajectory ``reference[0]``'s last ``window`` checkpoints up to phase
    ``reference[1]`` epoch ``reference[2]``) and against that last checkpoint alone."""
    ref_name, ref_phase, ref_epoch = reference

    def point(record: dict, name: str, phase: int, epoch: int) -> dict:
        for p in record["trajectories"][name]["checkpoints"]:
            if (p["phase"], p["epoch"]) == (phase, epoch):
                return p
        raise KeyError((name, phase, epoch))

    def full_reward(record: dict, epoch: int) -> float:
        return point(record, ref_name, ref_phase, epoch)["val"]["full"]["reward"]

    epochs = range(ref_epoch - window + 1, ref_epoch + 1)
    reference_rewards = [statistics.mean(full_reward(r, e) for e in epochs) for r in records]
    last_rewards = [full_reward(r, ref_epoch) for r in records]
    common = set.intersection(*(set(r["trajectories"]) for r in records))
    first = {n: p for n, p in records[0]["trajectories"].items() if n in common}
    rows = []
    for name, path in first.items():
        for p in path["checkpoints"]:
            for val in p["val"]:
                rewards, costs = [], []
                for r in records:
                    trajectory = r["trajectories"][name]
                    q = point(r, name, p["phase"], p["epoch"])
                    rewards.append(q["val"][val]["reward"])
                    costs.append(
                        trajectory["build_cpu_s"] + q["train_cpu_s"] + q["val"][val]["cpu_s"]
                    )
                phase1 = path["phase1"] if p["phase"] == 2 else p["epoch"]
                phase2 = p["epoch"] if p["phase"] == 2 else 0
                seed = derive_seed(0, name, val)
                cost = statistics.mean(costs)
                rows.append(
                    {
                        "recipe": f"{name}: cache {path['cache']}, phase 1 {phase1} ep, "
                        f"phase 2 {phase2} ep, val {val}",
                        "cache_samples": path["cache"],
                        "phase1_epochs": phase1,
                        "phase2_epochs": phase2,
                        "val": val,
                        "in_reference": name == ref_name
                        and p["phase"] == ref_phase
                        and p["epoch"] in epochs
                        and val == "full",
                        "cpu_s_per_arch": cost,
                        "archs_per_hour_2_cores": CORES * 3600 / cost,
                        "mean_reward": statistics.mean(rewards),
                        "rho": spearman_ci(rewards, reference_rewards, seed=seed).to_dict(),
                        "rho_last": spearman_ci(rewards, last_rewards, seed=seed).to_dict(),
                    }
                )
    return sorted(rows, key=lambda row: row["cpu_s_per_arch"])


def frontier(rows: list[dict]) -> list[dict]:
    """Rows no cheaper row matches or beats in rho (the cost/fidelity Pareto front)."""
    best, front = -math.inf, []
    for row in rows:
        rho = row["rho"]["value"]
        if not math.isnan(rho) and rho > best:
            front.append(row)
            best = rho
    return front


def markdown(rows: list[dict], header: dict) -> str:
    front = {id(row) for row in frontier(rows)}
    lines = [
        f"Recipes on {header['archs']} uniformly sampled architectures; reference: "
        f"{header['reference']}. rho = Spearman against the reference, rho (last) = against its "
        "last checkpoint alone, [95 % bootstrap CI]; * = on the cost/fidelity front (by rho); "
        "R = a checkpoint averaged into the reference.",
        "",
        "| recipe | core-s / arch | archs / hour (2 cores) | mean reward | rho [95 % CI] "
        "| rho (last) [95 % CI] |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        mark = (" *" if id(row) in front else "") + (" R" if row["in_reference"] else "")
        rho, last = row["rho"], row["rho_last"]
        lines.append(
            f"| {row['recipe']}{mark} | {row['cpu_s_per_arch']:.1f} | "
            f"{row['archs_per_hour_2_cores']:.0f} | {row['mean_reward']:.4f} | "
            f"{rho['value']:.3f} [{rho['low']:.2f}, {rho['high']:.2f}] | "
            f"{last['value']:.3f} [{last['low']:.2f}, {last['high']:.2f}] |"
        )
    return "\n".join(lines) + "\n"


def check_exactness(
    setup: TrialSetup, seed: int, text: str, stem_weights: str
) -> tuple[float, float]:
    """The reward of the configured recipe by ``run_trial`` and at the same
    checkpoint of a trajectory; they must be equal."""
    data = _open_data(stem_weights)
    genotype = DEFAULT_SPACE.parse(text)
    direct = run_trial(genotype, replace(setup, measure_latency=False), data, seed)
    path = {
        "name": "check",
        "cache": 0,
        "phase1": setup.phase1_epochs,
        "phase2": setup.phase2_epochs,
    }
    last = run_trajectory(genotype, setup, data, seed, path, {"full": setup.val_size})
    return direct.reward, last["checkpoints"][-1]["val"]["full"]["reward"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--archs", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reference-epochs", type=int, default=16, help="phase-2 epochs")
    parser.add_argument(
        "--reference-window",
        type=int,
        default=5,
        help="the reference reward: the mean of this many last phase-2 checkpoints",
    )
    parser.add_argument(
        "--cache-sizes",
        type=lambda text: tuple(int(v) for v in text.split(",") if v),
        default=(),
        help="also one phase-1 epoch over these cache prefixes, e.g. 662,993 (added to finished "
        "architectures)",
    )
    parser.add_argument("--seed", type=int, default=0, help="architecture sampling seed")
    parser.add_argument("--out", default="bench_recipes")
    parser.add_argument("--check", action="store_true", help="only check trajectory = run_trial")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    setup = replace(
        load_config(TrialSetup, section(params, "search", args.params)["eval"], "search.eval"),
        measure_latency=False,
    )
    stem_weights = str(params["stem"]["weights"])
    genotypes = [
        DEFAULT_SPACE.sample(derive_seed(args.seed, "recipes", i)).to_text()
        for i in range(args.archs)
    ]
    if args.check:
        direct, trajectory = check_exactness(setup, args.seed, genotypes[0], stem_weights)
        print(f"run_trial {direct!r}, trajectory checkpoint {trajectory!r}")
        return 0 if direct == trajectory else 1
    out = Path(args.out)
    (out / "archs").mkdir(parents=True, exist_ok=True)
    data = _open_data(stem_weights)
    paths = trajectories(
        setup, len(data.cache), len(data.meta_train), args.reference_epochs, args.cache_sizes
    )
    header = {
        "params": str(args.params),
        "archs": args.archs,
        "seed": args.seed,
        "setup": setup.to_dict(),
        "trajectories": paths,
        "reference": f"phase 1 {setup.phase1_epochs} epochs over {len(data.cache)} cached "
        f"samples + phase 2 {args.reference_epochs} epochs, the mean full-val reward of phase-2 "
        f"epochs {args.reference_epochs - args.reference_window + 1}-{args.reference_epochs}",
        "load_average_start": os.getloadavg(),
    }
    finished = {int(p.stem[1:]): read_json(p) for p in (out / "archs").glob("a*.json")}
    missing = {
        i: [p for p in paths if p["name"] not in finished.get(i, {}).get("trajectories", {})]
        for i in range(args.archs)
    }
    todo = [i for i in range(args.archs) if missing[i]]
    print(
        f"[recipes] {args.archs - len(todo)} of {args.archs} architectures done; {len(todo)} to go",
        flush=True,
    )
    start = time.perf_counter()
    with ProcessPoolExecutor(
        args.workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(stem_weights,),
    ) as pool:
        futures = {
            pool.submit(
                _evaluate_arch,
                i,
                genotypes[i],
                setup,
                derive_seed(args.seed, "train", i),
                missing[i],
            ): i
            for i in todo
        }
        for count, future in enumerate(as_completed(futures), 1):
            record = future.result()
            wall = record["wall_s"]
            earlier = finished.get(record["index"])
            if earlier is not None:  # trajectories added to a finished architecture
                added = {**earlier["trajectories"], **record["trajectories"]}
                record = {**earlier, "trajectories": added}
            write_json(out / "archs" / f"a{record['index']:03d}.json", record)
            elapsed = time.perf_counter() - start
            eta = elapsed / count * (len(todo) - count)
            print(
                f"[recipes] {count}/{len(todo)} architecture {record['index']} "
                f"({wall:.0f} s) elapsed {elapsed / 60:.1f} min ETA {eta / 60:.1f} min",
                flush=True,
            )
    records = [read_json(out / "archs" / f"a{i:03d}.json") for i in range(args.archs)]
    header["load_average_end"] = os.getloadavg()
    rows = recipes_from(records, ("full", 2, args.reference_epochs), args.reference_window)
    write_json(out / "recipes.json", {**header, "recipes": rows})
    table = markdown(rows, header)
    write_text(out / "recipes.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
