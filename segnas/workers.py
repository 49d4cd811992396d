"""Local worker processes that survive a dying worker (the search, ``compare`` and ``train``).

A worker process that dies (killed by the OS, a segfault, out of memory) breaks a
``ProcessPoolExecutor``: every job it holds then fails with ``BrokenProcessPool``, and nobody
can tell which job killed it. :class:`WorkerPool` therefore runs one single-process executor per
worker and gives each one job at a time. A death fails exactly the job that was running; its
executor is rebuilt and that job is retried once in a fresh process. A second death of the same
job goes to ``on_died`` (the caller records it); the other jobs go on. Jobs must derive every
random choice from the job itself, so a retry gives the result a first run would have given.

Workers die with the process that started them: each watches its parent's pid and exits as
soon as the parent is gone (e.g. ``kill -9`` of the search), so no orphan keeps computing.

A worker that dies before it runs anything (it cannot start, or its initializer fails) is no
job's fault: that stops the run with ``BrokenProcessPool`` instead of failing every job.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import torch

from .device import keep_freed_memory
from .errors import SegnasError

WORKER_DIED_REASON = (
    "the worker process died twice while evaluating it (killed by the OS, crashed or out of "
    "memory); it was retried once in a new process"
)


PARENT_CHECK_S = 0.5


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def _worker_setup(
    parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple
) -> None:
    """Start the parent watch of this worker process, then the caller's initializer."""
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True
    ).start()
    if initializer is not None:
        initializer(*initargs)


def _started() -> int:
    """The first task of every worker process: keeps freed memory for reuse (as the stages do,
    ``segnas.device.keep_freed_memory``) and proves that it started."""
    keep_freed_memory()
    return os.getpid()


class WorkerPool:
    """``workers`` spawned worker processes; ``initializer(worker_index, *initargs)`` runs once in
    each (again in a process that replaces a dead one, with the same index).

    The initializer should not do work that can fail (build evaluators lazily in the job): a
    failing initializer breaks the executor like a death would.
    """

    def __init__(
        self,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple = (),
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._initializer = initializer
        self._initargs = initargs
        self._context = multiprocessing.get_context("spawn")
        self._executors: list[concurrent.futures.ProcessPoolExecutor | None] = [None] * workers
        self._started: list[concurrent.futures.Future | None] = [None] * workers

    def _executor(self, slot: int) -> concurrent.futures.ProcessPoolExecutor:
        executor = self._executors[slot]
        if executor is None:
            initargs = (slot, *self._initargs) if self._initializer is not None else ()
            executor = concurrent.futures.ProcessPoolExecutor(
                1,
                mp_context=self._context,
                initializer=_worker_setup,
                initargs=(os.getpid(), self._initializer, initargs),
            )
            self._executors[slot] = executor
            self._started[slot] = executor.submit(_started)
        return executor

    def _check_started(self, slot: int) -> None:
        """Raise when the worker of ``slot`` died before it ran anything."""
        started = self._started[slot]
        if started is not None and started.done() and started.exception() is not None:
            raise BrokenProcessPool(
                f"a worker process died before it could run anything ({started.exception()}); "
                "the workers cannot start or their initializer failed. Run with one worker to "
                "see the error"
            ) from started.exception()

    def _discard(self, slot: int) -> None:
        executor, self._executors[slot] = self._executors[slot], None
        self._started[slot] = None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _submit(self, slot: int, fn: Callable, args: tuple) -> concurrent.futures.Future:
        try:
            return self._executor(slot).submit(fn, *args)
        except BrokenProcessPool:  # its idle worker died: not the job's fault
            self._check_started(slot)
            self._discard(slot)
            return self._executor(slot).submit(fn, *args)

    def run(
        self,
        fn: Callable[..., Any],
        jobs: Mapping[Hashable, tuple],
        on_result: Callable[[Hashable, Any], None],
        on_died: Callable[[Hashable, str], None],
        on_retry: Callable[[Hashable], None] | None = None,
    ) -> None:
        """Run ``fn(*jobs[key])`` for every key in the workers; ``on_result(key, result)`` as
        each finishes. A job whose worker dies is retried once (``on_retry(key)``); if it dies
        again, ``on_died(key, reason)``. Any other exception of a job propagates."""
        pending = deque(jobs)
        deaths = dict.fromkeys(jobs, 0)
        free = deque(range(self.workers))
        running: dict[concurrent.futures.Future, tuple[int, Hashable]] = {}
        while pending or running:
            while pending and free:
                slot, key = free.popleft(), pending.popleft()
                running[self._submit(slot, fn, jobs[key])] = (slot, key)
            done, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in sorted(done, key=lambda f: running[f][0]):
                slot, key = running.pop(future)
                free.append(slot)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    self._check_started(slot)
                    self._discard(slot)
                    deaths[key] += 1
                    if deaths[key] == 1:
                        if on_retry is not None:
                            on_retry(key)
                        pending.appendleft(key)
                    else:
                        on_died(key, WORKER_DIED_REASON)
                    continue
                on_result(key, result)

    def close(self) -> None:
        """Wait for running jobs, cancel queued ones, stop every worker."""
        for slot in range(self.workers):
            self._discard(slot)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


Job = TypeVar("Job")
Result = TypeVar("Result")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask: SLURM and taskset respect it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def jobs_at_once(device: torch.device, threads: int, num_jobs: int) -> int:
    """How many jobs of ``threads`` torch threads to run at once: on CPU as many as the usable
    cores hold (at least 1, at most ``num_jobs``); one at a time on an accelerator."""
    if device.type != "cpu" or num_jobs <= 1:
        return 1
    return max(1, min(num_jobs, usable_cores() // max(1, threads)))


def set_cpu_threads(threads: int) -> None:
    """The CPU setting a stage and each of its workers run under: ``threads`` torch threads,
    deterministic algorithms, freed memory kept for reuse."""
    keep_freed_memory()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def _job_worker_init(worker_index: int, threads: int) -> None:
    set_cpu_threads(threads)


def run_jobs(
    function: Callable[[Job], Result],
    jobs: Mapping[str, Job],
    processes: int,
    threads: int,
) -> dict[str, Result]:
    """``{name: function(job)}`` for every named job, in ``processes`` :class:`WorkerPool` workers
    (each under :func:`set_cpu_threads`) when more than one, else here, in order.

    ``function`` must be a module-level function and the jobs picklable. A job must not depend on
    which process runs it: then its result is the same whether it runs alone or beside others.
    A job whose worker dies twice raises :class:`SegnasError` naming it.
    """
    if processes <= 1:
        return {name: function(job) for name, job in jobs.items()}
    results: dict[str, Result] = {}

    def died(name: Hashable, reason: str) -> None:
        raise SegnasError(f"{name}: {reason}")

    with WorkerPool(processes, _job_worker_init, (threads,)) as pool:
        pool.run(
            function,
            {name: (job,) for name, job in jobs.items()},
            lambda name, result: results.__setitem__(name, result),
            died,
        )
    return {name: results[name] for name in jobs}
