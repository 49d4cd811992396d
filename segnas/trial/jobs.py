"""TrialPool as file-backed jobs: the one mechanism of the search and ``compare``.

An evaluation job scores one genotype and writes the result to a JSON file of its own, stamped
with the run's params hash. That file is the job's whole state: a job whose file exists is done
(its stamp is checked, so results of other params are never reused), a killed run resumes at
the first missing file, and the local pool, a Snakemake/SLURM fan-out and a rerun all compute
the same thing, since every seed derives from the job itself.

:class:`TrialPool` runs a batch of jobs on this machine: one after the other, or in a
:class:`~segnas.workers.WorkerPool` whose workers build each evaluator once, at their first job
(so that a failing build reaches the caller as the job's error). A job whose worker process
dies is retried once in a new process; a second death writes its file as ``worker_died`` with
reward 0, and the run goes on.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import torch

from ..errors import ArtifactError
from ..io import read_json, write_json
from ..space import Genotype
from ..workers import WorkerPool
from .recipe import TrialResult, worker_died_result

Evaluate = Callable[[Genotype, int], TrialResult]


class Recipe(Protocol):
    """A picklable description of an evaluator (``search.steps.TrialSpec``)."""

    device: str

    def build(self) -> Evaluate: ...


def check_stamp(path: Path, payload: Mapping[str, Any], params_hash: str, remedy: str) -> None:
    """Refuse a file written with other params than ``params_hash``; ``remedy`` says what to
    do."""
    if payload.get("params_hash") != params_hash:
        raise ArtifactError(
            f"{path} was written with params hash {payload.get('params_hash')} but the current "
            f"params hash is {params_hash}; {remedy}"
        )


def read_stamped(path: Path, params_hash: str, remedy: str) -> dict[str, Any]:
    """The JSON payload of ``path``, checked to carry ``params_hash``."""
    payload = read_json(path)
    check_stamp(path, payload, params_hash, remedy)
    return payload


def run_trial_to_file(
    path: Path,
    params_hash: str,
    remedy: str,
    locate: Callable[[], tuple[Genotype, int]],
    evaluate: Evaluate,
    fields: Mapping[str, Any] | None = None,
) -> TrialResult:
    """The result stored in ``path``; when absent, ``evaluate(*locate())`` (the genotype and
    its seed), written there with the params hash and ``fields``."""
    if path.is_file():
        return TrialResult.from_dict(read_stamped(path, params_hash, remedy)["result"])
    result = evaluate(*locate())
    write_json(path, {"params_hash": params_hash, **(fields or {}), "result": result.to_dict()})
    return result


@dataclass(frozen=True)
class TrialJob:
    """One evaluation: ``step(evaluate=...)`` evaluates and writes its file (or reads it back);
    ``recipe`` names its evaluator, ``where`` describes it in messages."""

    step: functools.partial
    recipe: str
    where: str

    def run(self, evaluate: Evaluate) -> TrialResult:
        return self.step(evaluate=evaluate)


class _Built:
    """Evaluators built from their recipes at first use (one set per process)."""

    def __init__(self, recipes: Mapping[str, Recipe]) -> None:
        self.recipes = dict(recipes)
        self.built: dict[str, Evaluate] = {}

    def __call__(self, name: str) -> Evaluate:
        if name not in self.built:
            self.built[name] = self.recipes[name].build()
        return self.built[name]


_IN_WORKER: dict[str, _Built] = {}


def _worker_init(worker_index: int, recipes: Mapping[str, Recipe]) -> None:
    """Worker ``worker_index`` keeps the recipes; on ``cuda`` with several GPUs it uses GPU
    ``worker_index`` modulo their count."""
    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        gpu = f"cuda:{worker_index % torch.cuda.device_count()}"
        recipes = {
            name: dataclasses.replace(recipe, device=gpu) if recipe.device == "cuda" else recipe
            for name, recipe in recipes.items()
        }
    _IN_WORKER["evaluators"] = _Built(recipes)


def _run_in_worker(job: TrialJob) -> TrialResult:
    return job.run(_IN_WORKER["evaluators"](job.recipe))


class TrialPool:
    """Runs evaluation jobs here, with ``workers`` processes (a pool, kept between batches) or
    in order in this process; ``label`` prefixes the messages written to ``stream``."""

    def __init__(
        self, recipes: Mapping[str, Recipe], workers: int, label: str, stream: TextIO
    ) -> None:
        self.recipes = dict(recipes)
        self.workers = workers
        self.label = label
        self.stream = stream
        self._local = _Built(recipes)
        self._pool: WorkerPool | None = None

    def run(
        self,
        jobs: Sequence[TrialJob],
        on_result: Callable[[TrialJob, TrialResult], None],
    ) -> None:
        """Run ``jobs``; ``on_result(job, result)`` as each finishes."""
        if self.workers <= 1:
            for job in jobs:
                on_result(job, job.run(self._local(job.recipe)))
            return
        if not jobs:
            return
        if self._pool is None:
            self._pool = WorkerPool(self.workers, _worker_init, (self.recipes,))
        by_key = dict(enumerate(jobs))

        def retry(key: int) -> None:
            self.stream.write(
                f"[{self.label}] the worker evaluating {by_key[key].where} died; retrying it once\n"
            )

        def died(key: int, reason: str) -> None:
            job = by_key[key]
            self.stream.write(
                f"[{self.label}] the worker evaluating {job.where} died again; recorded as "
                "worker_died with reward 0\n"
            )
            on_result(job, job.run(lambda genotype, _seed: worker_died_result(genotype, reason)))

        self._pool.run(
            _run_in_worker,
            {key: (job,) for key, job in by_key.items()},
            lambda key, result: on_result(by_key[key], result),
            died,
            retry,
        )

    def close(self) -> None:
        """Stop the worker processes (if any)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> TrialPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
