"""File-backed evaluation jobs: computed once, stamped, the same in order or in a pool."""

from __future__ import annotations

import functools
import io
import random
from pathlib import Path

import pytest
from config_values import eval_setup

from segnas.errors import ArtifactError
from segnas.io import read_json
from segnas.space import DEFAULT_SPACE, Genotype
from segnas.trial.jobs import TrialJob, TrialPool, run_trial_to_file
from segnas.trial.recipe import TrialResult
from segnas.trial.spec import TrialSpec

REMEDY = "delete the folder and rerun"
RECIPES = {"target": TrialSpec("target", eval_setup(), "arch0")}


def _genotype(index: int) -> Genotype:
    return DEFAULT_SPACE.sample(random.Random(index))


def score(root: str, params_hash: str, index: int, evaluate) -> TrialResult:
    """The job of these tests: architecture ``index`` (module level, so workers can run it)."""
    return run_trial_to_file(
        Path(root) / f"{index}.json",
        params_hash,
        REMEDY,
        lambda: (_genotype(index), index),
        evaluate,
        {"index": index},
    )


def _jobs(root: Path, count: int) -> list[TrialJob]:
    return [
        TrialJob(functools.partial(score, str(root), "h", i), "target", f"job {i}")
        for i in range(count)
    ]


def test_a_result_is_computed_once_written_stamped_and_refused_under_other_params(tmp_path):
    calls = []

    def evaluate(genotype, seed):
        calls.append(seed)
        return TrialResult(genotype.to_text(), genotype.hash, reward=0.25)

    first = score(str(tmp_path), "h", 3, evaluate)
    again = score(str(tmp_path), "h", 3, evaluate)
    assert calls == [3] and again.to_row() == first.to_row()
    payload = read_json(tmp_path / "3.json")
    assert set(payload) == {"params_hash", "index", "result"} and payload["params_hash"] == "h"
    with pytest.raises(ArtifactError, match=r"3\.json.*params hash h.*other.*delete the folder"):
        score(str(tmp_path), "other", 3, evaluate)


def _run(root: Path, workers: int) -> dict[str, dict]:
    """Five jobs and then none with ``workers`` processes: each job's reproducible fields."""
    found: dict[str, dict] = {}

    def record(job: TrialJob, result: TrialResult) -> None:
        found[job.where] = result.to_row()

    with TrialPool(RECIPES, workers, "test", io.StringIO()) as evaluations:
        evaluations.run(_jobs(root, 5), record)
        evaluations.run([], record)
    return found


def test_a_pool_gives_the_files_and_results_of_a_run_in_order(tmp_path):
    in_order, in_pool = _run(tmp_path / "w1", 1), _run(tmp_path / "w2", 2)
    assert in_order == in_pool and len(in_order) == 5
    for root in (tmp_path / "w1", tmp_path / "w2"):
        assert sorted(p.name for p in root.iterdir()) == [f"{i}.json" for i in range(5)]
    for i in range(5):
        one, two = (read_json(tmp_path / f"w{w}" / f"{i}.json") for w in (1, 2))
        rows = [TrialResult.from_dict(p.pop("result")).to_row() for p in (one, two)]
        assert one == two and rows[0] == rows[1]  # all but the wall-clock fields
