"""Controller vs random search (paper Sect. 4.3).

N architectures are sampled from the trained controller and N uniformly from the search
space. Each is evaluated in the search setup and in a longer one (phase 2 extended, 20 epochs
in the paper) with the same seed, giving 4N evaluations that run locally or fan out
(Snakemake/SLURM) through the same file-based steps as the search: ``sample`` writes
``samples.json``, ``evaluate`` one ``evals/<group>_<setup>_<index>.json``, ``assemble`` the
CSV and the metrics (Spearman's rank correlation between the two setups per group).

When the search setup is phase 1 alone (``search_setup_in_long``), the longer evaluation
passes through it: the local run then trains 2N times and reads each search-setup result off
its longer evaluation's phase-1 scores (``TrialResult.without_phase2``), the same numbers a
separate evaluation gives; the fan-out steps still evaluate each setup on its own.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import torch

from ..errors import ArtifactError, ConfigError
from ..io import remove_stale_temps_under, write_json, write_text
from ..progress import Progress
from ..provenance import KEY as PROVENANCE
from ..search.controller import Controller
from ..seeds import derive_seed
from ..space import DEFAULT_SPACE, Genotype, SearchSpace
from ..stats import compare_evidence, spearman
from ..trial.jobs import TrialJob, TrialPool, read_stamped, run_trial_to_file
from ..trial.recipe import TrialResult, TrialSetup
from ..trial.reward import estimated_cost
from ..trial.spec import TrialSpec
from .config import CompareConfig
from .layout import GROUPS, SETUPS, CompareLayout

CSV_COLUMNS = (
    "group",
    "index",
    "hash",
    "genotype",
    "downsampling_factor",
    "params",
    "reward_search",
    "reward_long",
    "miou_search",
    "miou_long",
    "status_search",
    "status_long",
)


def long_setup(setup: TrialSetup, phase2_epochs: int) -> TrialSetup:
    """The longer setup: the search setup with phase 2 extended to ``phase2_epochs``."""
    return replace(setup, phase2_epochs=phase2_epochs)


def search_setup_in_long(specs: Mapping[str, TrialSpec]) -> bool:
    """Whether the search setup's result is the longer evaluation's state after phase 1: a
    trained reward, the search setup phase 1 alone (no early stop, no latency term) and the
    longer setup the same but for phase 2."""
    search, long = specs["search"], specs["long"]
    setup = search.setup
    return (
        search.objective == "train"
        and setup.phase1_epochs > 0
        and setup.phase2_epochs == 0
        and setup.early_stop_reward is None
        and not setup.latency_weight
        and long == replace(search, setup=replace(setup, phase2_epochs=long.setup.phase2_epochs))
    )


# What a step says when a file of the comparison carries another params hash.
STALE = "delete the compare directory and rerun"


def draw_architectures(
    controller: Controller, num_archs: int, seed: int, space: SearchSpace = DEFAULT_SPACE
) -> dict[str, list[Genotype]]:
    """``num_archs`` genotypes from ``controller`` and as many uniform ones, all seeded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from_controller = [
            controller.sample(torch.Generator().manual_seed(derive_seed(seed, "compare", i)))[0]
            for i in range(num_archs)
        ]
    finally:
        torch.set_num_threads(threads)
    rng = random.Random(derive_seed(seed, "compare", "random"))
    uniform = [space.sample(rng) for _ in range(num_archs)]
    return {"controller": from_controller, "random": uniform}


def write_samples(
    layout: CompareLayout,
    controller: Controller,
    config: CompareConfig,
    seed: int,
    params_hash: str,
    space: SearchSpace = DEFAULT_SPACE,
) -> dict[str, list[Genotype]]:
    """Write (or reuse) ``samples.json``."""
    if layout.samples.is_file():
        return read_samples(layout, params_hash, space)
    drawn = draw_architectures(controller, config.num_archs, seed, space)
    samples = {g: [x.to_record() for x in drawn[g]] for g in GROUPS}
    write_json(layout.samples, {"params_hash": params_hash, "samples": samples})
    return drawn


def read_samples(
    layout: CompareLayout, params_hash: str, space: SearchSpace = DEFAULT_SPACE
) -> dict[str, list[Genotype]]:
    payload = read_stamped(layout.samples, params_hash, STALE)
    return {
        g: [
            space.from_record(record, f"{layout.samples} {g} {i}")
            for i, record in enumerate(payload["samples"][g])
        ]
        for g in GROUPS
    }


def run_compare_trial(
    layout: CompareLayout,
    params_hash: str,
    seed: int,
    group: str,
    setup: str,
    index: int,
    evaluate: Callable[[Genotype, int], TrialResult],
    space: SearchSpace = DEFAULT_SPACE,
    with_search_setup: bool = False,
) -> TrialResult:
    """The trial of architecture ``index`` of ``group`` in ``setup``; reuse its file when present.

    Both setups of one architecture use the same seed, so they differ only in phase 2.
    ``with_search_setup`` (the long setup, when ``search_setup_in_long``) also writes the
    search setup's file from this evaluation's phase 1.
    """
    if group not in GROUPS or setup not in SETUPS:
        raise ConfigError(f"compare: group must be one of {GROUPS} and setup one of {SETUPS}")

    def locate() -> tuple[Genotype, int]:
        samples = read_samples(layout, params_hash, space)
        if not 0 <= index < len(samples[group]):
            raise ConfigError(f"{layout.samples} has no {group} architecture {index}")
        return samples[group][index], derive_seed(seed, "compare", group, index)

    path = layout.evaluation(group, setup, index)
    result = run_trial_to_file(path, params_hash, STALE, locate, evaluate)
    if with_search_setup:
        if setup != "long":
            raise ValueError("with_search_setup reads the search setup off the long one")
        run_trial_to_file(
            layout.evaluation(group, "search", index),
            params_hash,
            STALE,
            locate,
            lambda _genotype, _seed: result.without_phase2(),
            {"from": path.name},
        )
    return result


def trial_job(
    layout: CompareLayout,
    params_hash: str,
    seed: int,
    group: str,
    setup: str,
    index: int,
    space: SearchSpace = DEFAULT_SPACE,
    with_search_setup: bool = False,
) -> TrialJob:
    """Architecture ``index`` of ``group`` in ``setup`` as a job for ``segnas.trial.jobs.TrialPool``
    (its evaluator recipe is named after the setup)."""
    step = functools.partial(
        run_compare_trial,
        layout,
        params_hash,
        seed,
        group,
        setup,
        index,
        space=space,
        with_search_setup=with_search_setup,
    )
    return TrialJob(step, setup, str(layout.evaluation(group, setup, index)))


def _stats(values: Sequence[float]) -> dict[str, float]:
    mean = sum(values) / len(values)
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"mean": mean, "median": median, "max": ordered[-1], "min": ordered[0]}


def assemble(
    layout: CompareLayout,
    config: CompareConfig,
    params_hash: str,
    space: SearchSpace = DEFAULT_SPACE,
    run_provenance: dict | None = None,
) -> dict[str, Any]:
    """Write ``compare.csv`` (one row per architecture) and ``metrics.json`` (per group the
    rewards and Spearman's rho, ``compare_evidence``'s intervals and p-values, and
    ``run_provenance``); return the metrics."""
    samples = read_samples(layout, params_hash, space)
    rows = []
    metrics: dict[str, Any] = {"num_archs": config.num_archs}
    rewards: dict[str, dict[str, list[float]]] = {}
    for group in GROUPS:
        results = {}
        for setup in SETUPS:
            results[setup] = []
            for index in range(config.num_archs):
                path = layout.evaluation(group, setup, index)
                if not path.is_file():
                    raise ArtifactError(f"{path} is missing; run compare evaluate for it first")
                payload = read_stamped(path, params_hash, STALE)
                results[setup].append(TrialResult.from_dict(payload["result"]))
        for index in range(config.num_archs):
            short, long = results["search"][index], results["long"][index]
            genotype = samples[group][index]
            rows.append(
                {
                    "group": group,
                    "index": index,
                    "hash": genotype.hash,
                    "genotype": genotype.to_text(),
                    "downsampling_factor": genotype.downsampling_factor,
                    "params": short.params,
                    "reward_search": short.reward,
                    "reward_long": long.reward,
                    "miou_search": short.miou,
                    "miou_long": long.miou,
                    "status_search": short.status,
                    "status_long": long.status,
                }
            )
        search_rewards = [r.reward for r in results["search"]]
        long_rewards = [r.reward for r in results["long"]]
        rewards[group] = {"search": search_rewards, "long": long_rewards}
        rho = spearman(search_rewards, long_rewards)
        metrics[group] = {
            "spearman_rho": None if math.isnan(rho) else rho,
            "reward_search": _stats(search_rewards),
            "reward_long": _stats(long_rewards),
        }
    metrics.update(compare_evidence(rewards))
    if run_provenance is not None:
        metrics[PROVENANCE] = run_provenance
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    write_text(layout.csv, buffer.getvalue())
    write_json(layout.metrics, metrics)
    return metrics


def run_compare(
    layout: CompareLayout,
    controller: Controller,
    config: CompareConfig,
    specs: dict[str, TrialSpec],
    seed: int,
    params_hash: str,
    stream: TextIO | None = None,
    space: SearchSpace = DEFAULT_SPACE,
) -> dict[str, Any]:
    """Every step on this machine (``config.workers`` processes); resumes finished jobs. When
    ``search_setup_in_long(specs)``, each long evaluation also gives the search setup's result
    (2N trainings instead of 4N). A worker process that dies is replaced and its evaluation
    retried once (then ``worker_died``, reward 0; with the search setup read off the long one,
    both setups' files record it)."""
    stream = stream or sys.stderr
    remove_stale_temps_under(layout.root)
    drawn = write_samples(layout, controller, config, seed, params_hash, space)
    shared = search_setup_in_long(specs)
    if shared:
        stream.write(
            "[compare] the search setup is phase 1 of the long one: its results are read off "
            f"the long evaluations ({2 * config.num_archs} trainings)\n"
        )
        jobs = [(g, "long", i) for g in GROUPS for i in range(config.num_archs)]
        missing = [
            job
            for job in jobs
            if not all(layout.evaluation(job[0], s, job[2]).is_file() for s in SETUPS)
        ]
    else:
        jobs = layout.jobs(config.num_archs)
        missing = [job for job in jobs if not layout.evaluation(*job).is_file()]
    progress = Progress("compare", len(jobs), stream=stream, done=len(jobs) - len(missing))
    if config.workers > 1 and specs["search"].objective == "train":
        # costliest first, so that the last evaluations to finish are short ones
        missing.sort(
            key=lambda job: -estimated_cost(drawn[job[0]][job[2]], specs[job[1]].setup, space)
        )

    def finished(job: TrialJob, result: TrialResult) -> None:
        progress.update(extra=f"{Path(job.where).stem} reward {result.reward:.4f}")

    with TrialPool(specs, config.workers, "compare", stream) as evaluations:
        evaluations.run(
            [
                trial_job(layout, params_hash, seed, *job, space, with_search_setup=shared)
                for job in missing
            ],
            finished,
        )
    return assemble(layout, config, params_hash, space, specs["search"].provenance())
