"""The GPU check: every CUDA path of the project run once, timed, with the device's name.

``bench/gpu_check.sh`` runs the whole check (``docs/performance.md``, "GPU check"); the steps
that are not ``segnas bench`` live here:

    prepare      (here, with the project's venv) a CamVid subset in the prepared layout and its
                 meta split, in one git-ignored folder (default .gpu-check/) that a run carries
    search       one search evaluation at the paper's recipe (configs/paper.yaml) on the subset,
                 per phase, scaled to the paper's data; then two evaluations at once
    final-train  a short final training of arch0 (AMP on CUDA): loss falls, nothing non-finite
    rewards      the same small search evaluation on the CPU and on the device, side by side
    summary      every figure with the device's name -> gpu_check.json and gpu_check.md

The run steps need only torch, torchvision, numpy, pandas, Pillow and PyYAML (a bare GPU
machine's python3): their configs are built from configs/paper.yaml directly, never through
the params schema (jsonschema), and nothing here imports dvc, dvclive, snakemake or
cityscapesscripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml

from segnas.bench import num_threads
from segnas.checkpoint import load_checkpoint
from segnas.data.dataset import SegmentationDataset
from segnas.data.prepared import load_prepared
from segnas.data.split import load_split, validation_count, write_split
from segnas.data.stem_cache import build_stem_cache
from segnas.data.transforms import TrainTransform
from segnas.device import keep_freed_memory, processor_name, resolve_device
from segnas.errors import ArtifactError, ConfigError, SegnasError
from segnas.final_training import train_model
from segnas.io import read_json, write_json, write_text
from segnas.named_configs import load_rendered
from segnas.provenance import git_state, package_versions
from segnas.published import resolve_genotype
from segnas.stem import build_stem
from segnas.trainconfig import TrainConfig
from segnas.training_data import build_datasets
from segnas.trial.recipe import STATUS_OK, TrialSetup
from segnas.trial.spec import TrialSpec
from segnas.workers import WorkerPool

REPO = Path(__file__).resolve().parents[1]
PAPER_CONFIG = REPO / "configs" / "paper.yaml"
PAPER_RESULTS = REPO / "segnas" / "report" / "paper_results.yaml"
SUBSET = "camvid-subset"
CARRY_LIMIT_MIB = 64.0  # what a device run carries beside the repository, in all
SEED = 0
ARCHS = ("arch0", "arch1")

# The paper's search data (CityScapes train, split 90/10 by configs/paper.yaml) and its cost:
# 2,000 architectures in 8 days on two GTX 1080Ti.
CITYSCAPES_TRAIN_IMAGES = 2975
CITYSCAPES_SIZE = (1024, 2048)
PAPER_SEARCH = {"architectures": 2000, "days": 8, "gpus": 2, "gpu": "GTX 1080Ti"}
PAPER_ARCHS_PER_GPU_HOUR = PAPER_SEARCH["architectures"] / (
    PAPER_SEARCH["days"] * 24 * PAPER_SEARCH["gpus"]
)

# Tiny sizes (--tiny): the same code paths in seconds on a CPU (the test runs these).
TINY_SEARCH = {
    "phase1_epochs": 1,
    "phase2_epochs": 1,
    "batch_size": 4,
    "crop_size": (48, 48),
    "val_size": None,
    "input_size": (64, 128),
    "threads": 1,
}
TINY_CACHE = {"crop_size": (48, 48), "passes": 1}
# The small evaluation that the rewards step runs on the CPU and on the device.
SMALL_SEARCH = {
    "phase1_epochs": 1,
    "phase2_epochs": 1,
    "batch_size": 16,
    "crop_size": (97, 97),
    "val_size": (180, 240),
    "input_size": (360, 480),
    "measure_latency": False,
    "threads": 4,
}
SMALL_CACHE = {"crop_size": (96, 96), "passes": 1}
FINAL_EPOCHS = 8
TINY_FINAL = {
    "epochs": 4,
    "batch_size": 4,
    "crop_size": (48, 64),
    "num_workers": 0,
}
REWARD_TOLERANCE = 0.05  # |reward CPU - reward device| of the small evaluation


def log(message: str) -> None:
    """A progress line on stderr (the shell script keeps it in the step's log)."""
    print(f"[gpu-check] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# the paper's recipe, read without the params schema


def paper_params() -> dict[str, Any]:
    """configs/paper.yaml merged with configs/base.yaml, as a mapping (PyYAML alone)."""
    return load_rendered(PAPER_CONFIG)


def _section(params: dict[str, Any], dotted: str) -> dict[str, Any]:
    value: Any = params
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise ConfigError(f"{PAPER_CONFIG}: no section {dotted!r}; restore it from git")
        value = value[key]
    return value


def _typed(cls: type, values: dict[str, Any], where: str, **fixed: Any) -> Any:
    """``cls(**values)`` for a config dataclass (lists become tuples); a missing key names the
    file and key."""
    names = [f.name for f in dataclasses.fields(cls)]
    merged = {**values, **fixed}
    missing = [n for n in names if n not in merged]
    if missing:
        raise ConfigError(f"{PAPER_CONFIG}: {where} lacks {', '.join(missing)}")
    as_tuples = {n: tuple(merged[n]) if isinstance(merged[n], list) else merged[n] for n in names}
    return cls(**as_tuples)


def search_setup(params: dict[str, Any], **overrides: Any) -> TrialSetup:
    """The paper's ``search.eval`` recipe with ``overrides``."""
    return _typed(TrialSetup, _section(params, "search.eval"), "search.eval", **overrides)


def train_config(params: dict[str, Any], **overrides: Any) -> TrainConfig:
    """The paper's final-training recipe (``train``) with a random stem and ``overrides``."""
    section = _section(params, "train")
    fixed = {"stem_weights": "none", "seed": SEED, "time_budget_s": None, **overrides}
    return _typed(TrainConfig, section, "train", **fixed)


def paper_search_data(params: dict[str, Any]) -> dict[str, Any]:
    """Sizes of the paper's search: meta-train / meta-val images, stem-cache samples."""
    val_fraction = float(_section(params, "split")["val_fraction"])
    meta_val = validation_count(CITYSCAPES_TRAIN_IMAGES, val_fraction)
    meta_train = CITYSCAPES_TRAIN_IMAGES - meta_val
    cache = _section(params, "cache_stem")
    return {
        "dataset": f"CityScapes train ({CITYSCAPES_TRAIN_IMAGES} images, "
        f"{CITYSCAPES_SIZE[0]}x{CITYSCAPES_SIZE[1]}), meta split {1 - val_fraction:g}/"
        f"{val_fraction:g}",
        "meta_train": meta_train,
        "meta_val": meta_val,
        "image_pixels": CITYSCAPES_SIZE[0] * CITYSCAPES_SIZE[1],
        "cache_samples": int(cache["num_samples"]),
        "cache_passes": round(int(cache["num_samples"]) / meta_train),
        "cache_crop": tuple(cache["crop_size"]),
        "cache_scale_range": tuple(cache["scale_range"]),
        "cache_flip": bool(cache["flip"]),
    }


# ---------------------------------------------------------------------------------------------
# the data subset


@dataclasses.dataclass(frozen=True)
class Subset:
    """The carried folder: ``prepared/`` (prepared layout), ``split/`` (meta split),
    ``subset.json`` (written last: what it holds)."""

    root: Path

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    @property
    def split(self) -> Path:
        return self.root / "split"

    @property
    def info(self) -> Path:
        return self.root / "subset.json"

    def check(self) -> dict[str, Any]:
        """The subset's description; an error says how to make it when it is missing."""
        if not self.info.is_file():
            raise ArtifactError(
                f"{self.info} does not exist: run `bench/gpu_check.sh prepare` where the CamVid "
                f"data is (it writes {self.root}/), and carry {self.root} with the run"
            )
        return read_json(self.info)


def _evenly_spaced(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` items spread over ``items`` (CamVid's files run in video order)."""
    return [items[i * len(items) // count] for i in range(count)]


def folder_mib(root: Path) -> float:
    """Size of the files under ``root`` in MiB."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


def prepare_subset(
    camvid: Path, data: Path, train: int, val: int, longer_side: int | None
) -> dict[str, Any]:
    """``train`` + ``val`` CamVid images (evenly spaced over each split) prepared under
    ``data/prepared``, with the meta split meta-train = those train images, meta-val = those
    val images under ``data/split``; ``data/subset.json`` last."""
    from segnas.data.camvid import camvid_source
    from segnas.data.prepare import write_prepared

    subset = Subset(data)
    subset.info.unlink(missing_ok=True)
    source = camvid_source(camvid, ("train", "val"), SUBSET)
    chosen = []
    for split, count in (("train", train), ("val", val)):
        pairs = [p for p in source.pairs if p.split == split]
        if not 2 <= count <= len(pairs):
            raise ConfigError(
                f"--{split} {count}: {camvid / split} holds {len(pairs)} images; ask for 2 to "
                f"{len(pairs)}"
            )
        chosen += _evenly_spaced(pairs, count)
    source.pairs = chosen
    spec = {"source": "camvid", "root": str(camvid), "longer_side": longer_side}
    write_prepared(source, subset.prepared, longer_side, spec=spec, progress=False)
    prepared = load_prepared(subset.prepared)
    meta_train, meta_val = prepared.ids("train"), prepared.ids("val")
    write_split(
        subset.split,
        meta_train,
        meta_val,
        {
            "dataset": SUBSET,
            "seed": SEED,
            "val_fraction": round(val / (train + val), 4),
            "source_split": "meta-train = the subset's train images, meta-val = its val images",
        },
    )
    size = folder_mib(data)
    if size > CARRY_LIMIT_MIB:
        raise ConfigError(
            f"{data} holds {size:.1f} MiB, more than the {CARRY_LIMIT_MIB:g} MiB a device run "
            "carries; rerun prepare with fewer images (--train, --val) or --longer-side 240"
        )
    sizes = sorted({(int(h), int(w)) for h, w in prepared.index[["height", "width"]].values})
    info = {
        "dataset": SUBSET,
        "source": str(camvid.resolve()),
        "images": {"train": len(meta_train), "val": len(meta_val)},
        "image_sizes_hw": [list(s) for s in sizes],
        "mib": round(size, 2),
        "made": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(subset.info, info)
    return info


def stem_cache(
    subset: Subset, work: Path, crop: tuple[int, int], passes: int, paper: dict[str, Any]
) -> tuple[Path, float]:
    """The stem cache of ``passes`` crops per meta-train image under ``work`` (built on the CPU
    with a seeded random stem unless it is there) and the seconds its build took."""
    out = work / f"cache-{crop[0]}x{crop[1]}-{passes}"
    if (out / "header.json").is_file():
        return out, 0.0
    prepared = load_prepared(subset.prepared)
    meta_train, _ = load_split(subset.split)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        stem = build_stem("none")
    start = time.perf_counter()
    build_stem_cache(
        prepared,
        meta_train,
        out,
        stem,
        crop_size=crop,
        num_samples=passes * len(meta_train),
        seed=SEED,
        scale_range=paper["cache_scale_range"],
        flip=paper["cache_flip"],
        stem_weights="none",
        progress=False,
    )
    return out, time.perf_counter() - start


def evaluator_spec(subset: Subset, setup: TrialSetup, cache: Path, device: str) -> TrialSpec:
    """The search's evaluator recipe on the subset (random stem, as the cache)."""
    return TrialSpec(
        objective="train",
        setup=setup,
        prepared_dir=str(subset.prepared),
        split_dir=str(subset.split),
        cache_dir=str(cache),
        stem_weights="none",
        device=device,
    )


# ---------------------------------------------------------------------------------------------
# search: one evaluation, then two at once


def _wait_for_peers(directory: Path, name: str, count: int, timeout_s: float = 600.0) -> None:
    """Mark ``name`` ready in ``directory``; return once ``count`` peers are ready."""
    (directory / name).touch()
    deadline = time.monotonic() + timeout_s
    while len(list(directory.iterdir())) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{directory}: the other evaluations did not start in {timeout_s} s")
        time.sleep(0.01)


def timed_evaluation(
    spec: TrialSpec,
    warmup: TrialSetup,
    arch: str,
    peers: tuple[str, str, int] | None = None,
) -> dict[str, Any]:
    """In a worker process: a short warm-up evaluation (CUDA context, kernels loaded: what a
    search worker has after its first architecture), then, once the ``peers`` (directory,
    name, count) are ready too, the timed evaluation of ``arch``."""
    genotype = resolve_genotype(arch)
    device = torch.device(spec.device)
    start = time.perf_counter()
    dataclasses.replace(spec, setup=warmup).build()(genotype, SEED)
    warmup_s = time.perf_counter() - start
    evaluate = spec.build()
    if peers is not None:
        _wait_for_peers(Path(peers[0]), peers[1], peers[2])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.time()
    result = evaluate(genotype, SEED)
    end = time.time()
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {
        "arch": arch,
        "pid": os.getpid(),
        "warmup_s": warmup_s,
        "start": start,
        "end": end,
        "peak_memory_mib": peak,
        "result": result.to_dict(),
    }


def run_in_workers(jobs: dict[str, tuple]) -> dict[str, dict[str, Any]]:
    """:func:`timed_evaluation` of each job at once, one project worker process each."""
    results: dict[str, dict[str, Any]] = {}

    def died(key: object, reason: str) -> None:
        raise RuntimeError(f"evaluation {key}: {reason}")

    with WorkerPool(len(jobs)) as pool:
        pool.run(timed_evaluation, jobs, results.__setitem__, died)
    return results


class GpuSampler:
    """nvidia-smi's utilisation (%) and memory (MiB) of the GPU every ``interval_s`` in a
    thread, while the block runs, with their wall-clock times; nothing on the CPU or without
    nvidia-smi."""

    QUERY = (
        "nvidia-smi",
        "--query-gpu=utilization.gpu,memory.used",
        "--format=csv,noheader,nounits",
    )

    def __init__(self, device: torch.device, interval_s: float = 0.5) -> None:
        self.enabled = device.type == "cuda" and shutil.which("nvidia-smi") is not None
        self.index = device.index or 0
        self.interval_s = interval_s
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            done = subprocess.run(
                [*self.QUERY, f"--id={self.index}"], capture_output=True, text=True, check=False
            )
            try:
                util, memory = (float(v) for v in done.stdout.strip().split(","))
            except ValueError:
                continue
            self.samples.append((time.time(), util, memory))

    def __enter__(self) -> GpuSampler:
        if self.enabled:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def summary(self, start: float, end: float) -> dict[str, Any] | None:
        """Mean and median utilisation and the peak memory used between the wall-clock times
        ``start`` and ``end``; None when nothing was sampled then."""
        window = [(u, m) for t, u, m in self.samples if start <= t <= end]
        if not window:
            return None
        util = [u for u, _ in window]
        return {
            "samples": len(window),
            "utilization_percent_mean": statistics.mean(util),
            "utilization_percent_median": statistics.median(util),
            "memory_used_mib_max": max(m for _, m in window),
        }


def loading_seconds_per_image(subset: Subset, setup: TrialSetup, limit: int = 32) -> float:
    """Seconds to read one meta-train image and label and make its phase-2 crop (one thread,
    as the search evaluation does in its own process)."""
    prepared = load_prepared(subset.prepared)
    meta_train, _ = load_split(subset.split)
    transform = TrainTransform(setup.crop_size, setup.scale_range, setup.flip, SEED)
    dataset = SegmentationDataset(prepared, meta_train[:limit], transform)
    with num_threads(setup.threads):
        start = time.perf_counter()
        for index in range(len(dataset)):
            dataset[index]
        return (time.perf_counter() - start) / len(dataset)


def mean_pixels(subset: Subset, ids: Sequence[str]) -> float:
    """Mean height x width of the subset's images ``ids``."""
    index = load_prepared(subset.prepared).index.set_index("id").loc[list(ids)]
    return float((index["height"] * index["width"]).mean())


def scale_to_paper(
    seconds: dict[str, float],
    setup: TrialSetup,
    measured: dict[str, float],
    paper: dict[str, Any],
) -> dict[str, Any]:
    """Seconds of one evaluation at the paper's recipe on the paper's data, from the subset's:
    phase 1 per cached sample, phase 2 per meta-train image (its image loading per pixel),
    validation per meta-val pixel; setup (build, FLOPs, latency) as measured."""
    validations = int(setup.phase1_epochs > 0) + int(setup.phase2_epochs > 0)
    subset_work = {
        "phase1_samples": setup.phase1_epochs * measured["cache_samples"],
        "phase2_images": setup.phase2_epochs * measured["meta_train"],
        "validation_pixels": validations * measured["meta_val"] * measured["val_pixels"],
    }
    paper_work = {
        "phase1_samples": setup.phase1_epochs * paper["cache_samples"],
        "phase2_images": setup.phase2_epochs * paper["meta_train"],
        "validation_pixels": validations * paper["meta_val"] * paper["image_pixels"],
    }
    load = measured["load_s_per_image"]
    per_image = seconds.get("phase2", 0.0) / max(subset_work["phase2_images"], 1)
    compute = max(per_image - load, 0.0)
    pixel_ratio = paper["image_pixels"] / measured["train_pixels"]
    phases = {
        "setup": seconds.get("setup", 0.0),
        "phase1": seconds.get("phase1", 0.0)
        / max(subset_work["phase1_samples"], 1)
        * paper_work["phase1_samples"],
        "phase2": paper_work["phase2_images"] * (compute + load * pixel_ratio),
        "validation": seconds.get("validation", 0.0)
        / max(subset_work["validation_pixels"], 1)
        * paper_work["validation_pixels"],
    }
    total = sum(phases.values())
    loading_as_subset = total - phases["phase2"] + paper_work["phase2_images"] * per_image
    return {
        "method": (
            "setup as measured; phase 1 x (paper phase-1 samples / subset's); phase 2: compute "
            "per image x paper images, plus image loading per image x paper images x "
            f"{pixel_ratio:.1f} (CityScapes pixels / subset's); validation x (paper meta-val "
            "pixels / subset's)"
        ),
        "subset_work": subset_work,
        "paper_work": paper_work,
        "phase2_load_s_per_image": load,
        "phase2_compute_s_per_image": compute,
        "seconds": phases,
        "total_s": total,
        "archs_per_gpu_hour": 3600.0 / total,
        "total_s_loading_as_subset": loading_as_subset,
        "archs_per_gpu_hour_loading_as_subset": 3600.0 / loading_as_subset,
        "paper_archs_per_gpu_hour": PAPER_ARCHS_PER_GPU_HOUR,
        "paper_search": PAPER_SEARCH,
    }


def _eval_summary(run: dict[str, Any]) -> dict[str, Any]:
    result = run["result"]
    keys = ("status", "reason", "reward", "reward_phase1", "miou", "params", "flops", "latency_ms")
    return {
        **{k: result[k] for k in keys},
        "seconds": result["seconds"],
        "warmup_s": run["warmup_s"],
        "peak_memory_mib": run["peak_memory_mib"],
    }


def search_check(subset: Subset, device: torch.device, work: Path, tiny: bool) -> dict[str, Any]:
    """One evaluation at the paper's recipe (or tiny), then two at once on the same device."""
    params = paper_params()
    paper = paper_search_data(params)
    setup = search_setup(params, **(TINY_SEARCH if tiny else {}))
    cache_crop = TINY_CACHE["crop_size"] if tiny else paper["cache_crop"]
    passes = TINY_CACHE["passes"] if tiny else paper["cache_passes"]
    meta_train, meta_val = load_split(subset.split)
    log(f"stem cache: {passes} x {len(meta_train)} crops of {cache_crop[0]}x{cache_crop[1]}")
    cache, cache_s = stem_cache(subset, work, cache_crop, passes, paper)
    measured = {
        "meta_train": len(meta_train),
        "meta_val": len(meta_val),
        "cache_samples": passes * len(meta_train),
        "train_pixels": mean_pixels(subset, meta_train),
        "val_pixels": (
            setup.val_size[0] * setup.val_size[1]
            if setup.val_size
            else mean_pixels(subset, meta_val)
        ),
        "load_s_per_image": loading_seconds_per_image(subset, setup),
    }
    spec = evaluator_spec(subset, setup, cache, str(device))
    warmup = dataclasses.replace(
        setup, phase1_epochs=min(setup.phase1_epochs, 1), phase2_epochs=min(setup.phase2_epochs, 1)
    )
    log("one evaluation of arch0 (after a warm-up evaluation in its worker)")
    with GpuSampler(device) as single_gpu:
        single = run_in_workers({"single": (spec, warmup, "arch0")})["single"]
    peers = work / "peers"
    peers.mkdir(exist_ok=True)
    log("two evaluations of arch0 at once")
    with GpuSampler(device) as pair_gpu:
        pair = run_in_workers(
            {key: (spec, warmup, "arch0", (str(peers), key, 2)) for key in ("a", "b")}
        )
    runs = [pair["a"], pair["b"]]
    span = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    overlap = min(r["end"] for r in runs) - max(r["start"] for r in runs)
    single_s = single["end"] - single["start"]
    scaled = scale_to_paper(single["result"]["seconds"], setup, measured, paper)
    gain = 2 * single_s / span
    return {
        "device": processor_name(device),
        "tiny": tiny,
        "recipe": setup.to_dict(),
        "recipe_source": f"{PAPER_CONFIG.relative_to(REPO)} search.eval"
        + (" with tiny sizes" if tiny else ""),
        "stem": "random (none): the GPU machine is offline; timings do not depend on it",
        "cache": {
            "crop_size": list(cache_crop),
            "samples": measured["cache_samples"],
            "build_s": cache_s,
        },
        "subset": measured,
        "paper_data": {k: list(v) if isinstance(v, tuple) else v for k, v in paper.items()},
        "single": {
            **_eval_summary(single),
            "wall_s": single_s,
            "gpu": single_gpu.summary(single["start"], single["end"]),
        },
        "pair": {
            "evaluations": [_eval_summary(r) for r in runs],
            "span_s": span,
            "overlap_s": overlap,
            "throughput_gain": gain,
            "slowdown_per_evaluation": statistics.mean(r["end"] - r["start"] for r in runs)
            / single_s,
            "gpu": pair_gpu.summary(max(r["start"] for r in runs), min(r["end"] for r in runs)),
        },
        "paper_scale": scaled,
        "paper_scale_two_at_once_archs_per_gpu_hour": scaled["archs_per_gpu_hour"] * gain,
    }


# ---------------------------------------------------------------------------------------------
# final training and rewards


def final_training_check(
    subset: Subset, device: torch.device, work: Path, tiny: bool
) -> dict[str, Any]:
    """A short final training of arch0 at the paper's recipe (AMP and channels_last on CUDA)."""
    params = paper_params()
    overrides = TINY_FINAL if tiny else {"epochs": FINAL_EPOCHS}
    config = train_config(params, checkpoint_every=overrides["epochs"], val_every=1, **overrides)
    threads = 1 if tiny else int(_section(params, "train")["threads"])
    prepared = load_prepared(subset.prepared)
    train_set, val_set = build_datasets(prepared, config, ("train",), "val")
    out_dir = work / "final-arch0"
    shutil.rmtree(out_dir, ignore_errors=True)
    with num_threads(threads):
        result = train_model(
            resolve_genotype("arch0"),
            train_set,
            val_set,
            prepared.num_classes,
            config,
            out_dir,
            device,
            classes=prepared.classes,
            palette=prepared.palette,
            dataset_name=SUBSET,
            log_name="gpu-check final arch0",
        )
    scaler = load_checkpoint(result.last)["scaler"]
    history = result.state.history
    losses = [float(h["loss"]) for h in history]
    vals = [float(h["val_miou"]) for h in history if "val_miou" in h]
    return {
        "device": processor_name(device),
        "tiny": tiny,
        "arch": "arch0",
        "config": config.to_dict(),
        "threads": threads,
        "amp": config.amp and device.type == "cuda",
        "grad_scale": None if scaler is None else float(scaler["scale"]),
        "epochs": result.state.epoch,
        "iterations": result.state.iteration,
        "train_seconds": result.state.train_seconds,
        "images_per_s": result.state.iteration * config.batch_size / result.state.train_seconds,
        "history": history,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "loss_fell": losses[-1] < losses[0],
        "all_finite": all(math.isfinite(v) for v in losses + vals),
        "weights_finite": True,  # train_model refuses to save non-finite weights
        "best_val_miou": result.state.best_miou if result.state.best_epoch >= 0 else None,
    }


REWARD_FIELDS = ("status", "reason", "reward", "reward_phase1", "miou", "mean_acc", "fwiou")


def rewards_check(subset: Subset, device: torch.device, work: Path, tiny: bool) -> dict[str, Any]:
    """The same small search evaluation of arch0 and arch1 on the CPU and on ``device``."""
    params = paper_params()
    paper = paper_search_data(params)
    setup = search_setup(params, **(TINY_SEARCH if tiny else SMALL_SEARCH))
    sizes = TINY_CACHE if tiny else SMALL_CACHE
    cache, _ = stem_cache(subset, work, sizes["crop_size"], sizes["passes"], paper)
    devices = ["cpu", str(device)]
    archs: dict[str, dict[str, Any]] = {arch: {} for arch in ARCHS}
    for column, name in zip(("cpu", "device"), devices, strict=True):
        evaluate = evaluator_spec(subset, setup, cache, name).build()
        for arch in ARCHS:
            log(f"small evaluation of {arch} on {name}")
            result = evaluate(resolve_genotype(arch), SEED)
            row = {k: getattr(result, k) for k in REWARD_FIELDS}
            archs[arch][column] = {**row, "seconds": result.seconds.get("total")}
    for row in archs.values():
        row["reward_abs_diff"] = abs(row["cpu"]["reward"] - row["device"]["reward"])
        row["miou_abs_diff"] = abs(row["cpu"]["miou"] - row["device"]["miou"])
    return {
        "devices": {"cpu": processor_name(torch.device("cpu")), "device": processor_name(device)},
        "same_device": device.type == "cpu",
        "recipe": setup.to_dict(),
        "cache": {"crop_size": list(sizes["crop_size"]), "passes": sizes["passes"]},
        "tolerance": REWARD_TOLERANCE,
        "archs": archs,
    }


# ---------------------------------------------------------------------------------------------
# summary


def environment(device: str) -> dict[str, Any]:
    """What ran the check: the device's name, torch, CUDA, the CPU, the date, the code."""
    resolved = torch.device(device if device.startswith("cuda") else "cpu")
    cuda = resolved.type == "cuda" and torch.cuda.is_available()
    name = processor_name(resolved) if cuda or resolved.type == "cpu" else "no CUDA GPU visible"
    env: dict[str, Any] = {
        "device": device,
        "device_name": name,
        "cpu": processor_name(torch.device("cpu")),
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(REPO),
        "packages": package_versions(),
    }
    if cuda:
        props = torch.cuda.get_device_properties(resolved)
        env["gpu_memory_gib"] = props.total_memory / 2**30
        env["compute_capability"] = f"{props.major}.{props.minor}"
        if shutil.which("nvidia-smi"):
            done = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                check=False,
            )
            env["driver"] = done.stdout.strip().splitlines()[0] if done.stdout.strip() else None
    return env


def _read(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


def _steps(out: Path) -> list[dict[str, Any]]:
    path = out / "steps.tsv"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, rc, seconds = line.split("\t")
        rows.append({"name": name, "exit_status": int(rc), "seconds": float(seconds)})
    return rows


def _finite_positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Pass/fail lines over the figures: every step ran, every figure is sane."""
    out = [
        {"check": f"step {s['name']} exited 0", "ok": s["exit_status"] == 0}
        for s in report["steps"]
    ]
    latency = report.get("latency") or {}
    rows = latency.get("results", [])
    out.append(
        {
            "check": "latency: every row timed (finite, > 0)",
            "ok": bool(rows) and all(_finite_positive(r["median_ms"]) for r in rows),
        }
    )
    train = (report.get("train_step") or {}).get("results", [])
    out.append(
        {
            "check": "training step timed (finite, > 0)",
            "ok": bool(train) and all(_finite_positive(r["median_ms"]) for r in train),
        }
    )
    search = report.get("search")
    if search:
        evals = [search["single"], *search["pair"]["evaluations"]]
        out.append(
            {
                "check": "search evaluations ok with a reward in (0, 1]",
                "ok": all(e["status"] == STATUS_OK and 0 < e["reward"] <= 1 for e in evals),
            }
        )
        out.append(
            {"check": "the two evaluations ran at once", "ok": search["pair"]["overlap_s"] > 0}
        )
    else:
        out.append({"check": "search results written", "ok": False})
    final = report.get("final_training")
    if final:
        out.append({"check": "final training: loss fell", "ok": final["loss_fell"]})
        out.append(
            {
                "check": "final training: losses, val mIoU, weights finite",
                "ok": final["all_finite"] and final["weights_finite"],
            }
        )
    else:
        out.append({"check": "final training results written", "ok": False})
    rewards = report.get("rewards")
    if rewards:
        rows = rewards["archs"].values()
        ok = all(r[c]["status"] == STATUS_OK for r in rows for c in ("cpu", "device"))
        out.append({"check": "small evaluations ok on both devices", "ok": ok})
        if rewards["same_device"]:
            name, close = (
                "rewards of two CPU runs identical",
                all(r["reward_abs_diff"] == 0 for r in rows),
            )
        else:
            name = f"rewards CPU vs device within {rewards['tolerance']}"
            close = all(r["reward_abs_diff"] <= rewards["tolerance"] for r in rows)
        out.append({"check": name, "ok": close})
    else:
        out.append({"check": "rewards results written", "ok": False})
    return out


def add_paper_latency(latency: dict[str, Any] | None) -> None:
    """Beside each 1024x2048 row of arch0/arch1, the paper's 1080Ti latency (Table 3)."""
    if not latency:
        return
    published = yaml.safe_load(PAPER_RESULTS.read_text(encoding="utf-8"))["architectures"]
    for row in latency["results"]:
        paper_ms = published.get(row["arch"], {}).get("latency_ms_1080ti_2048x1024")
        if row["size"] == list(CITYSCAPES_SIZE) and paper_ms:
            row["paper_1080ti_ms"] = paper_ms
            row["paper_1080ti_over_this"] = paper_ms / row["median_ms"]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return "-" if value is None else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _mib(value: float | None) -> str:
    return "not measured (CPU)" if value is None else f"{value:.0f} MiB"


def _gpu_use(sampled: dict[str, Any] | None) -> str:
    if sampled is None:
        return "use not sampled (no nvidia-smi, or the CPU)"
    return (
        f"busy {sampled['utilization_percent_mean']:.0f} % of the time (mean of "
        f"{sampled['samples']} nvidia-smi samples), {sampled['memory_used_mib_max']:.0f} MiB used"
    )


def markdown(report: dict[str, Any]) -> str:
    """The report as a short Markdown page."""
    env = report["environment"]
    lines = [
        f"# GPU check: {env['device_name'] or env['device']}",
        "",
        f"{env['date']}; torch {env['torch']} (CUDA {env['cuda']}, cuDNN {env['cudnn']}), "
        f"Python {env['python']}; CPU {env['cpu']} ({env['cpu_cores']} cores); "
        f"code {env['git'].get('commit') or 'not a git checkout'}.",
        "",
        "## Checks",
        "",
        *_table(
            ("check", "ok"), [(c["check"], "yes" if c["ok"] else "NO") for c in report["checks"]]
        ),
    ]
    latency = report.get("latency")
    if latency:
        lines += ["", "## Inference latency (batch 1, against the GEMM floor)", ""]
        rows = [
            (
                r["arch"],
                r["path"],
                f"{r['size'][0]}x{r['size'][1]}",
                r["flops"] / 1e9,
                r["gemm_gflops_per_s"],
                r["floor_ms"],
                r["median_ms"],
                r["ratio"],
                r.get("paper_1080ti_ms"),
            )
            for r in latency["results"]
        ]
        header = ("arch", "path", "HxW", "GFLOPs", "GEMM GFLOP/s", "floor ms", "ms", "x floor")
        lines += _table((*header, "paper 1080Ti ms"), rows)
    train = report.get("train_step")
    if train:
        lines += ["", "## Training step (search-time network, Adam)", ""]
        rows = [
            (
                r["arch"],
                r["path"],
                f"{r['size'][0]}x{r['size'][1]}",
                r["batch"],
                r["floor_ms"],
                r["median_ms"],
                r["ratio"],
            )
            for r in train["results"]
        ]
        lines += _table(("arch", "path", "HxW", "batch", "floor ms", "ms", "x floor"), rows)
    search = report.get("search")
    if search:
        single, scaled = search["single"], search["paper_scale"]
        lines += ["", "## One search evaluation (arch0) and two at once", ""]
        rows = [
            (
                phase,
                single["seconds"].get(phase, 0.0),
                scaled["seconds"][phase],
            )
            for phase in ("setup", "phase1", "phase2", "validation")
        ]
        rows.append(("total", single["seconds"].get("total"), scaled["total_s"]))
        lines += _table(("phase", "subset s", "paper data s (estimate)"), rows)
        pair = search["pair"]
        lines += [
            "",
            f"Reward {single['reward']:.4f} ({single['status']}); peak memory "
            f"{_mib(single['peak_memory_mib'])}; GPU {_gpu_use(single['gpu'])}.",
            f"**{scaled['archs_per_gpu_hour']:.1f} architectures per GPU-hour** at the paper's "
            f"recipe on the paper's data (paper: {scaled['paper_archs_per_gpu_hour']:.1f}); "
            f"{scaled['archs_per_gpu_hour_loading_as_subset']:.1f} if image loading cost what "
            "the subset's does. Scaling: " + scaled["method"] + ".",
            f"Two at once: span {pair['span_s']:.1f} s against {single['wall_s']:.1f} s for one "
            f"(throughput x{pair['throughput_gain']:.2f}, each evaluation "
            f"x{pair['slowdown_per_evaluation']:.2f} slower); GPU {_gpu_use(pair['gpu'])}; "
            f"estimate {search['paper_scale_two_at_once_archs_per_gpu_hour']:.1f} architectures "
            "per GPU-hour with two evaluations per GPU.",
        ]
    final = report.get("final_training")
    if final:
        lines += [
            "",
            "## Final training of arch0",
            "",
            f"{final['epochs']} epochs, {final['iterations']} iterations, AMP {final['amp']} "
            f"(grad scale {final['grad_scale']}), {final['images_per_s']:.1f} images/s; loss "
            f"{final['loss_first']:.4f} -> {final['loss_last']:.4f}; best val mIoU "
            f"{final['best_val_miou']:.4f}.",
        ]
    rewards = report.get("rewards")
    if rewards:
        lines += ["", "## Small search evaluation, CPU and device", ""]
        rows = [
            (
                arch,
                r["cpu"]["reward"],
                r["device"]["reward"],
                r["reward_abs_diff"],
                r["cpu"]["seconds"],
                r["device"]["seconds"],
            )
            for arch, r in rewards["archs"].items()
        ]
        header = ("arch", "reward CPU", "reward device", "|diff|", "CPU s", "device s")
        lines += _table(header, rows)
    return "\n".join(lines) + "\n"


def summary(out: Path, device: str) -> dict[str, Any]:
    """Gather every step's figures into ``gpu_check.json`` and ``gpu_check.md``."""
    report: dict[str, Any] = {
        "environment": environment(device),
        "steps": _steps(out),
        "latency": _read(out / "latency.json"),
        "train_step": _read(out / "train_step.json"),
        "search": _read(out / "search.json"),
        "final_training": _read(out / "final_training.json"),
        "rewards": _read(out / "rewards.json"),
    }
    add_paper_latency(report["latency"])
    report["checks"] = checks(report)
    report["ok"] = all(c["ok"] for c in report["checks"])
    write_json(out / "gpu_check.json", report)
    write_text(out / "gpu_check.md", markdown(report))
    return report


# ---------------------------------------------------------------------------------------------
# command line


# The device steps: the function and the result file it writes under --out.
STEPS = {
    "search": (search_check, "search.json"),
    "final-train": (final_training_check, "final_training.json"),
    "rewards": (rewards_check, "rewards.json"),
}


@contextmanager
def _device_step(args: argparse.Namespace) -> Iterator[tuple[Subset, torch.device, Path]]:
    device = resolve_device(args.device)
    keep_freed_memory()
    subset = Subset(Path(args.data))
    subset.check()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    yield subset, device, work


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="the CamVid subset a device run carries")
    prepare.add_argument("--camvid", default="../shared/data/CamVid", help="CamVid root")
    prepare.add_argument("--data", default=".gpu-check", help="output folder (git-ignored)")
    prepare.add_argument("--train", type=int, default=100, help="train images (meta-train)")
    prepare.add_argument("--val", type=int, default=20, help="val images (meta-val)")
    prepare.add_argument(
        "--longer-side", type=int, default=None, help="resize so (default: as stored, 480)"
    )
    for name in STEPS:
        step = commands.add_parser(name)
        step.add_argument("--device", default="cuda", help="cuda, cpu or auto (default cuda)")
        step.add_argument("--data", default=".gpu-check", help="the prepared subset's folder")
        step.add_argument("--work", required=True, help="scratch folder (stem caches, models)")
        step.add_argument("--out", required=True, help="results folder")
        step.add_argument("--tiny", action="store_true", help="tiny sizes (a CPU run in seconds)")
    summarize = commands.add_parser("summary", help="gpu_check.json and gpu_check.md")
    summarize.add_argument("--device", default="cuda")
    summarize.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            info = prepare_subset(
                Path(args.camvid), Path(args.data), args.train, args.val, args.longer_side
            )
            print(f"gpu-check prepare: {info} -> {args.data}")
        elif args.command == "summary":
            report = summary(Path(args.out), args.device)
            print((Path(args.out) / "gpu_check.md").read_text(encoding="utf-8"))
            return 0 if report["ok"] else 1
        else:
            with _device_step(args) as (subset, device, work):
                function, output = STEPS[args.command]
                result = function(subset, device, work, args.tiny)
            write_json(Path(args.out) / output, result)
    except SegnasError as exc:
        print(f"gpu-check {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
