"""Run a reward audit as file-backed jobs: stem caches per reward seed, zero-cost proxies, the
search reward of every architecture under every seed, and final trainings scored on val.

Each job writes one small JSON file stamped with what its result depends on, so a killed audit
resumes at the first missing file and a stale file is refused, never reused. Rewards run as the
search's evaluation jobs (``segnas.trial.jobs``), final trainings in the same worker processes, the
costliest first.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from ..complexity import count_flops
from ..config import load_config, section, setting
from ..data.prepared import load_prepared
from ..data.split import load_split, read_split_info
from ..data.stem_cache import build_stem_cache, open_stem_cache
from ..errors import ConfigError
from ..final_training import build_datasets, train_model
from ..io import read_json, sha256_file, sha256_json, write_json, write_text
from ..model import build_model
from ..pipeline.paths import PREPARED, SPLIT, STEM_CACHE
from ..progress import Progress
from ..search.config import SearchConfig
from ..seeds import derive_seed
from ..space import Genotype
from ..trainconfig import TrainConfig
from ..trial.data import TrialData
from ..trial.jobs import TrialJob, TrialPool, check_stamp, read_stamped, run_trial_to_file
from ..trial.recipe import TrialResult, TrialSetup
from ..trial.reward import build_search_network, estimated_cost
from ..trial.spec import TrialSpec
from ..workers import WorkerPool, set_cpu_threads
from .plan import AuditArch, AuditLayout
from .proxies import score_proxies

STALE = "it belongs to another audit: give another --out (or remove the file)"
PROXY_BATCH = 32
SPLIT_FILES = ("meta_train.txt", "meta_val.txt")


@dataclass(frozen=True)
class AuditData:
    """What the configuration in ``params.yaml`` says about the reward and the final training."""

    seed: int
    setup: TrialSetup
    cache_spec: dict[str, Any]
    dataset: str
    stem_weights: str
    device: str
    train: TrainConfig
    train_dataset: str
    train_splits: tuple[str, ...]
    train_threads: int

    @classmethod
    def from_params(cls, params: dict, params_path: str) -> AuditData:
        """Read the ``seed``, ``device``, ``stem``, ``cache_stem``, ``search`` and ``train``
        sections; the split and stem cache stages must have run."""
        seed = int(setting(params, "seed", params_path))
        search = SearchConfig.from_params(section(params, "search", params_path), seed)
        if search.objective != "train":
            raise ConfigError(
                f"{params_path}: search.objective is {search.objective!r}; the reward audit "
                "measures the trained reward (search.objective: train)"
            )
        spec = dict(section(params, "train", params_path))
        train_dataset = str(spec["dataset"])
        prepared = load_prepared(PREPARED / train_dataset)
        if "val" not in prepared.splits:
            raise ConfigError(
                f"{PREPARED / train_dataset} has no val split (splits: "
                f"{', '.join(prepared.splits)}); the audit scores final trainings on val"
            )
        sizes = prepared.index[["height", "width"]].drop_duplicates()
        if spec["input_size"] is None and len(sizes) == 1:
            spec["input_size"] = [int(v) for v in sizes.iloc[0]]
        stem_weights = str(section(params, "stem", params_path)["weights"])
        train = load_config(TrainConfig, spec, "train", stem_weights=stem_weights, seed=seed)
        if train.class_weighting != "none":
            raise ConfigError(
                f"{params_path}: train.class_weighting {train.class_weighting!r} is not "
                "supported by the reward audit yet; use none"
            )
        return cls(
            seed=seed,
            setup=search.eval,
            cache_spec=dict(section(params, "cache_stem", params_path)),
            dataset=str(read_split_info(SPLIT)["dataset"]),
            stem_weights=stem_weights,
            device=str(setting(params, "device", params_path)),
            train=train,
            train_dataset=train_dataset,
            train_splits=tuple(spec["train_splits"]),
            train_threads=int(spec["threads"]),
        )

    def reward_identity(self) -> dict[str, Any]:
        """What a reward depends on besides the architecture and the job's seeds."""
        split = {
            name: sha256_file(SPLIT / name)[:16] for name in ("meta_train.txt", "meta_val.txt")
        }
        return {
            "eval": self.setup.to_dict(),
            "cache_stem": self.cache_spec,
            "dataset": self.dataset,
            "split": split,
            "stem_weights": self.stem_weights,
            "seed": self.seed,
        }

    def final_identity(self) -> dict[str, Any]:
        """What a final training depends on besides the architecture and its seed."""
        train = {k: v for k, v in self.train.to_dict().items() if k != "seed"}
        return {
            "train": train,
            "dataset": self.train_dataset,
            "train_splits": list(self.train_splits),
            "seed": self.seed,
        }


def stamp(identity: dict[str, Any]) -> str:
    """16 hex digits of ``identity``."""
    return sha256_json(identity)[:16]


def write_plan(layout: AuditLayout, plan: dict[str, Any]) -> None:
    """Write ``plan.json``, or refuse (naming the differing keys) when the audit directory
    holds another audit's plan."""
    plan = json.loads(json.dumps(plan))  # as read back: lists, not tuples
    if layout.plan.is_file():
        found = read_json(layout.plan)
        differing = sorted(k for k in set(found) | set(plan) if found.get(k) != plan.get(k))
        if differing:
            raise ConfigError(
                f"{layout.plan} holds another audit (differs in: {', '.join(differing)}); give "
                "another --out, or remove that directory to start over"
            )
        return
    write_json(layout.plan, plan)
    write_text(layout.work / ".gitignore", "*\n")


def build_caches(layout: AuditLayout, data: AuditData, replicates: int) -> None:
    """One stem cache per reward seed: the configured crops, each from its own seed, through
    the stem of ``cache/stem`` (so every cache holds the same network's outputs)."""
    stem = open_stem_cache(STEM_CACHE).load_stem()
    prepared = load_prepared(PREPARED / data.dataset)
    meta_train, _ = load_split(SPLIT)
    for replicate in range(replicates):
        path = layout.cache(replicate)
        if (path / "header.json").is_file():
            continue
        build_stem_cache(
            prepared,
            meta_train,
            path,
            stem,
            crop_size=tuple(data.cache_spec["crop_size"]),
            num_samples=int(data.cache_spec["num_samples"]),
            seed=derive_seed(data.seed, "audit", "cache", replicate),
            scale_range=tuple(data.cache_spec["scale_range"]),
            flip=bool(data.cache_spec["flip"]),
            stem_weights=data.stem_weights,
        )


def reward_specs(layout: AuditLayout, data: AuditData, replicates: int) -> dict[str, TrialSpec]:
    """The evaluator of each reward seed (``s0``, ``s1``, ...), each on its own stem cache."""
    return {
        f"s{replicate}": TrialSpec(
            "train",
            data.setup,
            prepared_dir=str(PREPARED / data.dataset),
            split_dir=str(SPLIT),
            cache_dir=str(layout.cache(replicate)),
            stem_weights=data.stem_weights,
            device=data.device,
        )
        for replicate in range(replicates)
    }


def _located(genotype: Genotype, seed: int) -> tuple[Genotype, int]:
    return genotype, seed


def reward_jobs(
    layout: AuditLayout, archs: Sequence[AuditArch], data: AuditData, replicates: int
) -> list[tuple[Path, TrialJob]]:
    """Every (architecture, reward seed) evaluation with its result file, the costliest
    architectures first."""
    reward_stamp = stamp(data.reward_identity())
    cost = {a.name: estimated_cost(a.genotype, data.setup) for a in archs}
    jobs = []
    for arch in sorted(archs, key=lambda a: -cost[a.name]):
        for replicate in range(replicates):
            seed = derive_seed(data.seed, "audit", "reward", arch.genotype.hash, replicate)
            path = layout.reward(arch.name, replicate)
            step = functools.partial(
                run_trial_to_file,
                path,
                reward_stamp,
                STALE,
                functools.partial(_located, arch.genotype, seed),
                fields={"name": arch.name, "group": arch.group, "replicate": replicate},
            )
            where = f"{arch.name} seed {replicate}"
            jobs.append((path, TrialJob(step, f"s{replicate}", where)))
    return jobs


def run_rewards(
    layout: AuditLayout,
    archs: Sequence[AuditArch],
    data: AuditData,
    replicates: int,
    workers: int,
    stream: TextIO,
) -> None:
    """Evaluate every architecture under every reward seed (files already written are read)."""
    jobs = reward_jobs(layout, archs, data, replicates)
    todo = [job for path, job in jobs if not path.is_file()]
    stream.write(f"[reward-audit] rewards: {len(jobs) - len(todo)} of {len(jobs)} done\n")
    if not todo:
        return
    progress = Progress("reward-audit rewards", len(todo), interval=0.0, stream=stream)

    def done(job: TrialJob, result: TrialResult) -> None:
        cpu = result.seconds.get("cpu", 0.0)
        progress.update(
            extra=f"{job.where}: {result.status} {result.reward:.4f} ({cpu:.0f} core-s)"
        )

    with TrialPool(reward_specs(layout, data, replicates), workers, "reward-audit", stream) as pool:
        pool.run(todo, done)


def run_proxies(
    layout: AuditLayout, archs: Sequence[AuditArch], data: AuditData, stream: TextIO
) -> None:
    """The zero-cost proxies of every architecture, on the first batch of the seed-0 cache."""
    todo = [a for a in archs if not layout.proxies(a.name).is_file()]
    if not todo:
        return
    reward_stamp = stamp(data.reward_identity())
    evaldata = TrialData.from_paths(
        PREPARED / data.dataset, SPLIT, layout.cache(0), data.stem_weights
    )
    batch = evaldata.cache.batch(list(range(min(PROXY_BATCH, len(evaldata.cache)))))
    progress = Progress("reward-audit proxies", len(todo), stream=stream)
    for arch in todo:
        seed = derive_seed(data.seed, "audit", "proxies", arch.genotype.hash)
        model = build_search_network(arch.genotype, data.setup, evaldata, seed)
        start = time.process_time()
        scores = score_proxies(model.decoder, batch)
        payload = {
            "params_hash": reward_stamp,
            "name": arch.name,
            "hash": arch.genotype.hash,
            "scores": scores,
            "core_s": time.process_time() - start,
        }
        write_json(layout.proxies(arch.name), payload)
        progress.update(extra=arch.name)


@dataclass(frozen=True)
class FinalJob:
    """One final training of an audited architecture (picklable, for the worker processes)."""

    arch: AuditArch
    trial: int
    stamp: str
    config: TrainConfig
    data: AuditData
    result_path: Path
    work_dir: Path

    @property
    def where(self) -> str:
        return f"{self.arch.name} training {self.trial}"


def final_jobs(
    layout: AuditLayout, archs: Sequence[AuditArch], data: AuditData, repeats: int
) -> list[FinalJob]:
    """One final training per architecture, a second one (another seed) for the first
    ``repeats`` of them (alternating groups); the costliest first."""
    final_stamp = stamp(data.final_identity())
    by_group: dict[str, list[AuditArch]] = {}
    for arch in archs:
        by_group.setdefault(arch.group, []).append(arch)
    alternating = [a for pair in zip(*by_group.values(), strict=False) for a in pair]
    twice = {a.name for a in alternating[:repeats]}
    jobs = []
    for arch in archs:
        for trial in range(2 if arch.name in twice else 1):
            # a root-seed-sized seed: the training derives its epoch seeds by arithmetic
            seed = derive_seed(data.seed, "audit", "final", arch.genotype.hash, trial) % 2**31
            jobs.append(
                FinalJob(
                    arch,
                    trial,
                    final_stamp,
                    replace(data.train, seed=seed),
                    data,
                    layout.final(arch.genotype.hash, trial),
                    layout.final_work(arch.genotype.hash, trial),
                )
            )
    cost = {a.name: final_cost(a.genotype, data.train) for a in archs}
    return sorted(jobs, key=lambda job: (-cost[job.arch.name], job.trial))


def final_cost(genotype: Genotype, config: TrainConfig) -> int:
    """FLOPs of the final network on a training crop: what orders the final trainings."""
    model = build_model(genotype, 2, config.agg_width, config.sep_conv_units, seed=0)
    return count_flops(model, config.crop_size)


def run_final_job(job: FinalJob) -> dict[str, Any]:
    """Train ``job`` (resuming its checkpoints) and write its result file; its result."""
    if job.result_path.is_file():
        return read_stamped(job.result_path, job.stamp, STALE)
    prepared = load_prepared(PREPARED / job.data.train_dataset)
    train_set, val_set = build_datasets(prepared, job.config, job.data.train_splits, "val")
    start = time.process_time()
    result = train_model(
        job.arch.genotype,
        train_set,
        val_set,
        prepared.num_classes,
        job.config,
        job.work_dir,
        job.data.device,
        classes=prepared.classes,
        palette=prepared.palette,
        dataset_name=job.data.train_dataset,
        log_name=f"reward-audit final {job.where}",
    )
    summary = result.summary()
    payload = {
        "params_hash": job.stamp,
        "name": job.arch.name,
        "hash": job.arch.genotype.hash,
        "trial": job.trial,
        "seed": job.config.seed,
        "val_miou": summary["final_val_miou"],
        "best_val_miou": summary["best_val_miou"],
        "epochs": summary["epochs"],
        "core_s": time.process_time() - start,
    }
    write_json(job.result_path, payload)
    return payload


def _final_worker_init(worker_index: int, threads: int) -> None:
    set_cpu_threads(threads)


def run_finals(
    layout: AuditLayout,
    archs: Sequence[AuditArch],
    data: AuditData,
    repeats: int,
    workers: int,
    stream: TextIO,
) -> None:
    """Every final training not yet done, ``workers`` at a time."""
    jobs = final_jobs(layout, archs, data, repeats)
    for job in jobs:
        if job.result_path.is_file():
            check_stamp(job.result_path, read_json(job.result_path), job.stamp, STALE)
    todo = [job for job in jobs if not job.result_path.is_file()]
    stream.write(f"[reward-audit] final trainings: {len(jobs) - len(todo)} of {len(jobs)} done\n")
    if not todo:
        return
    progress = Progress("reward-audit finals", len(todo), interval=0.0, stream=stream)

    def done(key: int, payload: dict[str, Any]) -> None:
        where, miou, core_s = todo[key].where, payload["val_miou"], payload["core_s"]
        progress.update(extra=f"{where}: val mIoU {miou:.4f} ({core_s:.0f} core-s)")

    if workers <= 1:
        set_cpu_threads(data.train_threads)
        for key, job in enumerate(todo):
            done(key, run_final_job(job))
        return

    def died(key: int, reason: str) -> None:
        raise ConfigError(f"reward-audit: {todo[key].where}: {reason}")

    with WorkerPool(workers, _final_worker_init, (data.train_threads,)) as pool:
        pool.run(run_final_job, {k: (job,) for k, job in enumerate(todo)}, done, died)


@dataclass(frozen=True)
class AuditOptions:
    """How much the audit measures (``segnas reward-audit``'s options)."""

    out: Path
    finals: Path | None = None
    role: str = "heldout"
    per_group: int = 8
    reward_seeds: int = 3
    final_repeats: int = 4
    band: Path | None = None
    workers: int = 2
    final: bool = True

    def check(self) -> None:
        """Raise :class:`ConfigError` for values the audit cannot use."""
        if self.reward_seeds < 2:
            raise ConfigError(f"--reward-seeds must be at least 2, got {self.reward_seeds}")
        if self.final_repeats < 0:
            raise ConfigError(f"--final-repeats must be >= 0, got {self.final_repeats}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")


def run_audit(
    params: dict,
    params_path: str,
    options: AuditOptions,
    archs_for: Callable[[int], list[AuditArch]],
    stream: TextIO = sys.stderr,
) -> AuditLayout:
    """Plan the audit (``archs_for(seed)`` draws its architectures), then run what is missing:
    caches, proxies, rewards and (``options.final``) final trainings."""
    options.check()
    data = AuditData.from_params(params, params_path)
    layout = AuditLayout(options.out, options.finals)
    archs = archs_for(data.seed)
    if options.final_repeats > len(archs):
        raise ConfigError(
            f"--final-repeats {options.final_repeats} exceeds the {len(archs)} architectures"
        )
    plan = {
        "role": options.role,
        "reward_seeds": options.reward_seeds,
        "final_repeats": options.final_repeats,
        "reward_stamp": stamp(data.reward_identity()),
        "final_stamp": stamp(data.final_identity()),
        "recipe": data.setup.to_dict(),
        "final_recipe": data.final_identity(),
        "architectures": [arch.to_dict() for arch in archs],
    }
    write_plan(layout, plan)
    stream.write(
        f"[reward-audit] {len(archs)} architectures x {options.reward_seeds} reward seeds "
        f"-> {layout.root}\n"
    )
    build_caches(layout, data, options.reward_seeds)
    run_proxies(layout, archs, data, stream)
    run_rewards(layout, archs, data, options.reward_seeds, options.workers, stream)
    if options.final:
        run_finals(layout, archs, data, options.final_repeats, options.workers, stream)
    return layout
