"""Stage ``cache_stem``: stem outputs of fixed meta-train crops -> ``cache/stem/``.

Usage: python stages/cache_stem.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from segnas.config import section, setting
from segnas.data.prepared import load_prepared
from segnas.data.split import check_split_params, load_split
from segnas.data.stem_cache import build_stem_cache
from segnas.device import keep_freed_memory
from segnas.pipeline.entry import DeclaredParams, run_stage
from segnas.pipeline.paths import PREPARED, SPLIT, STEM_CACHE
from segnas.stem import build_stem


def cache_stem(params: DeclaredParams, args: argparse.Namespace) -> str:
    """Run the stem over the fixed meta-train crops into ``cache/stem/``; the closing line."""
    keep_freed_memory()
    torch.use_deterministic_algorithms(True)
    spec = section(params, "cache_stem", args.params)
    weights = str(section(params, "stem", args.params)["weights"])
    seed = int(setting(params, "seed", args.params))
    split = section(params, "split", args.params)
    dataset = check_split_params(SPLIT, split, seed)["dataset"]
    prepared = load_prepared(PREPARED / dataset)
    meta_train, _ = load_split(SPLIT)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # a random-init stem ("none") is reproducible from the seed
        stem = build_stem(weights)
    start = time.monotonic()
    cache = build_stem_cache(
        prepared,
        meta_train,
        STEM_CACHE,
        stem,
        crop_size=tuple(spec["crop_size"]),
        num_samples=int(spec["num_samples"]),
        seed=seed,
        scale_range=tuple(spec["scale_range"]),
        flip=bool(spec["flip"]),
        stem_weights=weights,
    )
    size = sum(info["bytes"] for info in cache.header["arrays"].values())
    return (
        f"cache_stem: {len(cache)} samples of {dataset} at {list(cache.crop_size)}, stem "
        f"{weights} ({cache.stem_hash}), {size / 2**20:.1f} MiB in "
        f"{time.monotonic() - start:.1f} s -> {STEM_CACHE}"
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("cache_stem", cache_stem, argv)


if __name__ == "__main__":
    sys.exit(main())
