"""Stage ``cache_stem``: stem outputs of fixed meta-train crops -> ``cache/stem/``.

Usage: python stages/cache_stem.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from segnas.config import load_params, section, setting
from segnas.data.prepared import load_prepared
from segnas.data.split import check_split_params, load_split
from segnas.data.stem_cache import build_stem_cache
from segnas.device import keep_freed_memory
from segnas.errors import SegnasError
from segnas.pipeline.paths import PREPARED, SPLIT, STEM_CACHE, require_project_root
from segnas.stem import build_stem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    keep_freed_memory()
    torch.use_deterministic_algorithms(True)
    try:
        require_project_root(__file__)
        params = load_params(args.params)
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
    except SegnasError as exc:
        print(f"cache_stem: error: {exc}", file=sys.stderr)
        return 2
    size = sum(info["bytes"] for info in cache.header["arrays"].values())
    print(
        f"cache_stem: {len(cache)} samples of {dataset} at {list(cache.crop_size)}, stem "
        f"{weights} ({cache.stem_hash}), {size / 2**20:.1f} MiB in "
        f"{time.monotonic() - start:.1f} s -> {STEM_CACHE}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
