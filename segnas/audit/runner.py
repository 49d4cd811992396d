"""Run a reward audit as file-backed jobs: stem caches per reward seed, zero-cost proxies, the
search reward of every architecture under every seed, and final trainings scored on val
(``segnas.audit.finals``).

Each job writes one small JSON file stamped with what its result depends on, so a killed audit
resumes at the first missing file and a stale file is refused, never reused. Rewards run as
trials (``segnas.trial.jobs``), the costliest first.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..data.prepared import load_prepared
from ..data.split import load_split
from ..data.stem_cache import build_stem_cache, open_stem_cache
from ..errors import ConfigError
from ..io import read_json, write_json, write_text
from ..pipeline.paths import PREPARED, SPLIT, STEM_CACHE
from ..progress import Progress
from ..seeds import derive_seed
from ..space import Genotype
from ..trial.data import TrialData
from ..trial.jobs import TrialJob, TrialPool, run_trial_to_file
from ..trial.recipe import TrialResult
from ..trial.reward import build_search_network, estimated_cost
from ..trial.spec import TrialSpec
from .data import STALE, AuditData, stamp
from .finals import run_finals
from .plan import AuditArch, AuditLayout
from .proxies import score_proxies

PROXY_BATCH = 32


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
