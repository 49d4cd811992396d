"""Worker processes: how many jobs run at once, and that a job runs alike in a worker and here."""

from __future__ import annotations

import os

import pytest
import torch

from segnas import workers
from segnas.errors import SegnasError
from segnas.workers import jobs_at_once, run_jobs


@pytest.mark.parametrize(
    ("device", "threads", "num_jobs", "expected"),
    [
        ("cpu", 2, 3, 2),  # 4 cores hold two 2-thread jobs
        ("cpu", 1, 3, 3),  # never more processes than jobs
        ("cpu", 1, 8, 4),
        ("cpu", 3, 5, 1),  # one job's threads use most cores: one at a time
        ("cpu", 8, 2, 1),  # more threads than cores: still runs, one at a time
        ("cpu", 1, 1, 1),
        ("cuda", 1, 4, 1),  # accelerators train one model at a time
    ],
)
def test_jobs_at_once_fits_the_usable_cores(monkeypatch, device, threads, num_jobs, expected):
    monkeypatch.setattr(workers, "usable_cores", lambda: 4)
    assert jobs_at_once(torch.device(device), threads, num_jobs) == expected


def describe_worker(job: int) -> tuple[int, int, bool, int]:
    return (
        job * job,
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        (os.getpid()),
    )


def fail_on_three(job: int) -> int:
    if job == 3:
        raise ValueError("job 3 is bad")
    return job


def test_run_jobs_runs_each_job_in_a_worker_under_the_stage_thread_setting():
    results = run_jobs(describe_worker, {"a": 3, "b": 4, "c": 5}, processes=2, threads=1)
    assert list(results) == ["a", "b", "c"]
    assert [r[0] for r in results.values()] == [9, 16, 25]
    assert all(r[1] == 1 and r[2] for r in results.values())
    assert os.getpid() not in {r[3] for r in results.values()}


def test_run_jobs_with_one_process_runs_here_in_order():
    results = run_jobs(describe_worker, {"b": 2, "a": 1}, processes=1, threads=1)
    assert list(results) == ["b", "a"]
    assert {r[3] for r in results.values()} == {os.getpid()}


def test_run_jobs_reraises_a_failing_job():
    with pytest.raises(ValueError, match="job 3 is bad"):
        run_jobs(fail_on_three, {"x": 1, "y": 3}, processes=2, threads=1)


def test_run_jobs_names_a_job_whose_worker_dies_twice():
    with pytest.raises(SegnasError, match="y: the worker process died twice"):
        run_jobs(os._exit, {"y": 9}, processes=2, threads=1)
