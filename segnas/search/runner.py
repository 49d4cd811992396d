"""The search on this machine: a local worker pool that drives the steps of ``search.steps``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

import torch

from ..io import read_json, remove_stale_temps_under
from ..progress import Progress
from ..space import DEFAULT_SPACE, SearchSpace
from ..workers import WorkerPool
from .config import SearchConfig
from .directory import prepare_directory
from .lock import directory_lock
from .log import Record
from .recipe import EvalResult, worker_died_result
from .steps import (
    EvaluatorSpec,
    SearchLayout,
    assemble,
    evaluate_index,
    sample_round,
    update_round,
)

_WORKER: dict = {}


def _worker_init(worker_index: int, spec: EvaluatorSpec) -> None:
    """Remember the evaluator recipe; worker k gets GPU k (mod the count) on ``cuda``. The
    evaluator is built at the first evaluation, so that its errors reach the caller."""
    if spec.device == "cuda" and torch.cuda.device_count() > 1:
        device = f"cuda:{worker_index % torch.cuda.device_count()}"
        spec = EvaluatorSpec(**{**spec.__dict__, "device": device})
    _WORKER.clear()
    _WORKER["spec"] = spec


def _worker_evaluate(
    root: str, config: SearchConfig, params_hash: str, round_index: int, index: int
) -> EvalResult:
    if "evaluate" not in _WORKER:
        _WORKER["evaluate"] = _WORKER["spec"].build()
    return evaluate_index(
        SearchLayout(root), config, params_hash, round_index, index, _WORKER["evaluate"]
    )


def _evaluate_in_pool(
    pool: WorkerPool,
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    round_index: int,
    indices: list[int],
    on_result: Callable[[EvalResult], None],
    stream: TextIO,
    space: SearchSpace,
) -> None:
    """Evaluate ``indices`` of ``round_index`` in ``pool``; an evaluation whose worker process
    dies is retried once, and recorded as ``worker_died`` (reward 0) if it dies again."""

    def where(index: int) -> str:
        return f"round {round_index} architecture {index} ({layout.evaluation(round_index, index)})"

    def retry(index: int) -> None:
        stream.write(f"[search] the worker evaluating {where(index)} died; retrying it once\n")

    def died(index: int, reason: str) -> None:
        stream.write(
            f"[search] the worker evaluating {where(index)} died again; recorded as worker_died "
            "with reward 0\n"
        )
        result = evaluate_index(
            layout,
            config,
            params_hash,
            round_index,
            index,
            lambda genotype, seed: worker_died_result(genotype, reason),
            space,
        )
        on_result(result)

    jobs = {i: (str(layout.root), config, params_hash, round_index, i) for i in indices}
    pool.run(_worker_evaluate, jobs, lambda _, result: on_result(result), died, retry)


def run_search(
    layout: SearchLayout,
    config: SearchConfig,
    params_hash: str,
    spec: EvaluatorSpec,
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
    spec: EvaluatorSpec,
    stream: TextIO,
    space: SearchSpace,
    extra: dict | None,
) -> list[Record]:
    identity = {"search": config.result_fields(), **(extra or {})}
    prepare_directory(layout, params_hash, identity, stream)
    remove_stale_temps_under(layout.root)
    done = sum(
        layout.evaluation(r, i).is_file()
        for r in range(config.rounds)
        for i in range(config.archs_per_round)
    )
    progress = Progress("search", config.total, config.progress_interval, stream, done=done)
    best = _best_so_far(layout, config, params_hash)
    pool = WorkerPool(config.workers, _worker_init, (spec,)) if config.workers > 1 else None
    local_evaluate = None
    try:
        for round_index in range(config.rounds):
            if layout.checkpoint(round_index).is_file():
                continue
            sample_round(layout, config, params_hash, round_index, space)
            missing = [
                i
                for i in range(config.archs_per_round)
                if not layout.evaluation(round_index, i).is_file()
            ]

            def finished(result: EvalResult, round_index: int = round_index) -> None:
                nonlocal best
                best = max(best, result.reward)
                progress.update(extra=_extra(round_index, config, best))

            if pool is None:
                for index in missing:
                    local_evaluate = local_evaluate or spec.build()
                    finished(
                        evaluate_index(
                            layout, config, params_hash, round_index, index, local_evaluate, space
                        )
                    )
            else:
                _evaluate_in_pool(
                    pool, layout, config, params_hash, round_index, missing, finished, stream, space
                )
            update_round(layout, config, params_hash, round_index, space)
    finally:
        if pool is not None:
            pool.close()
    records = assemble(layout, config, params_hash, space, spec.provenance())
    return records


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
