"""The audit's final trainings: each architecture trained with the configuration's final
recipe and scored on the **val** split (a few twice, with another seed), as resumable,
stamped jobs in worker processes, the costliest first. The strategy study trains its best
architectures the same way."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from ..complexity import count_flops
from ..data.prepared import load_prepared
from ..errors import ConfigError
from ..final_training import train_model
from ..io import read_json, write_json
from ..model import build_model
from ..pipeline.paths import PREPARED
from ..progress import Progress
from ..seeds import derive_seed
from ..space import Genotype
from ..trainconfig import TrainConfig
from ..training_data import build_datasets
from ..trial.jobs import check_stamp, read_stamped
from ..workers import WorkerPool, set_cpu_threads
from .data import STALE, AuditData, stamp
from .plan import AuditArch, AuditLayout


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
    log_prefix: str = "reward-audit final"

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
        log_name=f"{job.log_prefix} {job.where}",
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
