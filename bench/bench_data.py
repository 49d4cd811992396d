"""Data benchmarks: input pipeline vs training step, phase 1 with vs without the stem cache,
cache size and reader memory.

Usage (from the repository root):
    python bench/bench_data.py [--prepared DIR | --camvid ../shared/data/CamVid]
                               [--crop 321 321] [--samples 64] [--threads 1]

Prints a Markdown table (the figures in docs/data.md) and a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from segnas.data.dataset import SegmentationDataset, read_pair
from segnas.data.prepare import prepare_dataset
from segnas.data.prepared import load_prepared
from segnas.data.stem_cache import build_stem_cache, open_stem_cache
from segnas.data.transforms import TrainTransform, normalize_image
from segnas.device import keep_freed_memory
from segnas.model import SEARCH_CONFIG, build_model
from segnas.published import resolve_genotype

READER = r"""
import json, sys, time
from segnas.data.stem_cache import open_stem_cache
def status_kib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
base = status_kib("VmHWM")
cache = open_stem_cache(sys.argv[1])
start = time.perf_counter()
for epoch in range(2):
    for i in range(0, len(cache), 16):
        q, e, l = cache.batch(list(range(i, min(i + 16, len(cache)))))
seconds = time.perf_counter() - start
roll = {}
for line in open("/proc/self/smaps_rollup"):
    parts = line.split()
    if len(parts) >= 3 and parts[-1] == "kB":
        roll[parts[0].rstrip(":")] = int(parts[1])
print(json.dumps({"base_kib": base, "peak_kib": status_kib("VmHWM"), "seconds": seconds,
                  "private_kib": roll.get("Private_Clean", 0) + roll.get("Private_Dirty", 0),
                  "rss_file_kib": roll.get("Rss", 0) - roll.get("Anonymous", 0)}))
"""


def images_per_second(fn, images_per_call: int, seconds: float = 8.0, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        done += images_per_call
    return done / (time.perf_counter() - start)


def bench_pipeline(prepared, crop, batch, workers) -> float:
    ids = prepared.ids("train")
    dataset = SegmentationDataset(prepared, ids, TrainTransform(crop, seed=0))
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=False,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )
    iterator = iter(loader)

    def step():
        nonlocal iterator
        try:
            next(iterator)
        except StopIteration:
            iterator = iter(loader)
            next(iterator)

    return images_per_second(step, batch)


def bench_train_step(num_classes, crop, batch) -> float:
    model = build_model(resolve_genotype("arch0"), num_classes, **SEARCH_CONFIG, seed=0).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randn(batch, 3, *crop)
    labels = torch.randint(0, num_classes, (batch, *crop))

    def step():
        logits = model.predict(images)
        loss = torch.nn.functional.cross_entropy(logits, labels, ignore_index=255)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return images_per_second(step, batch, seconds=10.0)


def bench_phase1(prepared, cache, crop, batch) -> tuple[float, float, float]:
    """Seconds per phase-1 epoch (decoder-only): from the cache, recomputing the stem on crops
    held in RAM, and recomputing it from the image files (decode + crop + stem)."""
    model = build_model(resolve_genotype("arch0"), prepared.num_classes, **SEARCH_CONFIG, seed=0)
    stem, decoder = cache.load_stem(), model.decoder.train()
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-3)
    transform = TrainTransform(crop, seed=int(cache.header["crop_seed"]))
    crops, labels = [], []
    for i, sample in enumerate(cache.header["samples"]):  # the same samples, pre-cropped in RAM
        image, label = read_pair(prepared, sample["id"])
        params = transform.sample_params(image.height, image.width, i)
        img, lab = transform.apply(image, label, params)
        crops.append(normalize_image(img))
        labels.append(torch.from_numpy(lab[::4, ::4].astype("int64")))
    n = len(cache)

    def train(batch_of):
        start = time.perf_counter()
        for i in range(0, n, batch):
            quarter, eighth, lab = batch_of(list(range(i, min(i + batch, n))))
            logits = decoder(quarter, eighth)
            logits = torch.nn.functional.interpolate(logits, size=lab.shape[-2:], mode="bilinear")
            loss = torch.nn.functional.cross_entropy(logits, lab, ignore_index=255)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return time.perf_counter() - start

    def recompute(index):
        with torch.no_grad():
            quarter, eighth = stem(torch.stack([crops[i] for i in index]))
        return quarter, eighth, torch.stack([labels[i] for i in index])

    def from_files(index):
        images, labs = [], []
        for i in index:
            sample = cache.header["samples"][i]
            image, label = read_pair(prepared, sample["id"])
            params = transform.sample_params(image.height, image.width, i)
            img, lab = transform.apply(image, label, params)
            images.append(normalize_image(img))
            labs.append(torch.from_numpy(lab[::4, ::4].astype("int64")))
        with torch.no_grad():
            quarter, eighth = stem(torch.stack(images))
        return quarter, eighth, torch.stack(labs)

    train(cache.batch)  # warm-up (page cache, allocator)
    cached = min(train(cache.batch) for _ in range(2))
    recomputed = min(train(recompute) for _ in range(2))
    from_disk = min(train(from_files) for _ in range(2))
    return cached, recomputed, from_disk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, help="an existing prepared dataset directory")
    parser.add_argument(
        "--camvid",
        type=Path,
        default=Path("../shared/data/CamVid"),
        help="CamVid root to prepare when --prepared is not given",
    )
    parser.add_argument(
        "--crop",
        type=int,
        nargs=2,
        default=(321, 321),
        metavar=("H", "W"),
        help="search crop size (default 321 321, the search default)",
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--samples", type=int, default=64, help="cached samples for phase 1")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    crop = tuple(args.crop)
    with tempfile.TemporaryDirectory(prefix="bench_data.") as tmp:
        if args.prepared:
            root, name = args.prepared, args.prepared.name
        elif args.camvid.is_dir():
            root, name = Path(tmp) / "camvid", "CamVid"
            prepare_dataset(
                "camvid", {"source": "camvid", "root": str(args.camvid)}, root, progress=False
            )
        else:
            root, name = Path(tmp) / "synthetic", "synthetic 360x480"
            spec = {"source": "synthetic", "num_images": {"train": 64}, "image_size": [360, 480]}
            prepare_dataset("synthetic", spec, root, progress=False)
        prepared = load_prepared(root)
        rows = []
        for workers in (0, 1, 2):
            rate = bench_pipeline(prepared, crop, args.batch, workers)
            rows.append((f"input pipeline, {workers} worker(s)", f"{rate:.1f} images/s"))
        step = bench_train_step(prepared.num_classes, crop, args.batch)
        rows.append(("arch0 training step (search widths, fwd+bwd+Adam)", f"{step:.1f} images/s"))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            from segnas.stem import build_stem

            stem = build_stem("none")
        cache_dir = Path(tmp) / "stem"
        start = time.perf_counter()
        build_stem_cache(
            prepared,
            prepared.ids("train"),
            cache_dir,
            stem,
            crop,
            args.samples,
            seed=0,
            progress=False,
        )
        build_seconds = time.perf_counter() - start
        cache = open_stem_cache(cache_dir)
        cached, recomputed, from_disk = bench_phase1(prepared, cache, crop, args.batch)
        n = args.samples
        rows.append((f"phase-1 epoch, {n} samples, from the cache", f"{cached:.2f} s"))
        rows.append(
            (
                f"phase-1 epoch, {n} samples, stem recomputed on crops in RAM",
                f"{recomputed:.2f} s (cache/this {cached / recomputed:.2f})",
            )
        )
        rows.append(
            (
                f"phase-1 epoch, {n} samples, decode + crop + stem every step",
                f"{from_disk:.2f} s (cache/this {cached / from_disk:.2f})",
            )
        )
        size = sum(p.stat().st_size for p in cache_dir.iterdir())
        rows.append(("cache build time", f"{build_seconds:.1f} s"))
        rows.append(
            (
                "cache size on disk",
                f"{size / 2**20:.1f} MiB ({size / args.samples / 2**10:.0f} KiB/sample)",
            )
        )
        reader = subprocess.run(
            [sys.executable, "-c", READER, str(cache_dir)],
            check=True,
            capture_output=True,
            text=True,
        )
        mem = json.loads(reader.stdout)
        rows.append(
            (
                "reader peak RSS (VmHWM, 2 passes over the cache)",
                f"{mem['peak_kib'] / 1024:.0f} MiB (after imports {mem['base_kib'] / 1024:.0f}"
                f" MiB; private {mem['private_kib'] / 1024:.0f} MiB, file-backed shared "
                f"{mem['rss_file_kib'] / 1024:.0f} MiB)",
            )
        )
    print(
        f"\nDataset: {name} ({len(prepared.ids('train'))} train images), crop {crop[0]}x"
        f"{crop[1]}, batch {args.batch}, torch threads {args.threads}\n"
    )
    print("| measurement | value |\n|---|---|")
    for key, value in rows:
        print(f"| {key} | {value} |")
    best = max(float(v.split()[0]) for k, v in rows[:3])
    print(
        f"\nbench_data: input pipeline {best:.0f} img/s vs arch0 step {step:.0f} img/s; "
        f"phase-1 cache/recompute {cached / recomputed:.2f} (vs decode+stem "
        f"{cached / from_disk:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
