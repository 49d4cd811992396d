"""The search on this machine: the steps of ``search.steps``, trials in ``segnas.trial.jobs``."""

from __future__ import annotations

import sys
from typing import TextIO

from ..io import read_json, remove_stale_temps_under
from ..progress import Progress
from ..space import DEFAULT_SPACE, SearchSpace
from ..trial.jobs import TrialJob, TrialPool
from ..trial.recipe import TrialResult
from ..trial.reward import estimated_cost
from ..trial.spec import TrialSpec
from .config import SearchConfig
from .directory import prepare_directory
from .identity import identity_of
from .layout import SearchLayout
from .lock import directory_lock
from .log import Record
from .steps import (
    assemble,
    sample_round,
    trial_job,
    update_round,
)


def run_search(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    spec: TrialSpec,
    stream: TextIO | None = None,
    space: SearchSpace = DEFAULT_SPACE,
    extra: dict | None = None,
) -> list[Record]:
    """The whole search on this machine with ``config.workers`` processes; resumable. A worker
    process that dies is replaced and its evaluation retried once (then ``worker_died``).
    ``extra``: what ``params_hash`` hashes besides the search fields (e.g. the data). Another
    local search running in ``layout.root`` is refused, naming it."""
    with directory_lock(layout.root, params_hash):
        return _run_search(layout, config, params_hash, spec, stream or sys.stderr, space, extra)


def _run_search(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    spec: TrialSpec,
    stream: TextIO,
    space: SearchSpace,
    extra: dict | None,
) -> list[Record]:
    prepare_directory(layout, params_hash, identity_of(config, extra), stream)
    remove_stale_temps_under(layout.root)
    done = sum(
        layout.evaluation(r, i).is_file()
        for r in range(config.rounds)
        for i in range(config.archs_per_round)
    )
    progress = Progress("search", config.total, config.progress_interval, stream, done=done)
    best = _best_so_far(layout, config, params_hash)

    with TrialPool({"search": spec}, config.workers, "search", stream) as evaluations:
        for round_index in range(config.rounds):
            if layout.checkpoint(round_index).is_file():
                continue
            samples = sample_round(layout, config, params_hash, round_index, space)
            missing = [
                i
                for i in range(config.archs_per_round)
                if not layout.evaluation(round_index, i).is_file()
            ]
            if config.workers > 1 and spec.objective == "train":
                # costliest first: a round waits for its last evaluation (results do not
                # depend on the order)
                where = str(layout.samples(round_index))
                missing.sort(
                    key=lambda i: (
                        -estimated_cost(
                            space.from_record(samples[i], f"{where} sample {i}"), spec.setup, space
                        )
                    )
                )
            jobs = [trial_job(layout, config, params_hash, round_index, i, space) for i in missing]

            def finished(
                _job: TrialJob, result: TrialResult, round_index: int = round_index
            ) -> None:
                nonlocal best
                best = max(best, result.reward)
                progress.update(extra=_extra(round_index, config, best))

            evaluations.run(jobs, finished)
            update_round(layout, config, params_hash, round_index, space)
    return assemble(layout, config, params_hash, space, spec.provenance())


def _extra(round_index: int, config: SearchConfig, best: float) -> str:
    return f"round {round_index + 1}/{config.rounds} best reward {best:.4f}"


def _best_so_far(layout: SearchLayout, config: SearchConfig, params_hash: str) -> float:
    best = 0.0
    for r in range(config.rounds):
        for i in range(config.archs_per_round):
            path = layout.evaluation(r, i)
            if path.is_file():
                best = max(best, float(read_json(path)["result"]["reward"]))
    return best
