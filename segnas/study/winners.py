"""Test-set numbers for a decided study's winners, and only for them (a description, after
the decision): the first strategy of each comparison decided ``met``, its endpoint
architecture with the highest val mIoU over the seeds (ties to the lower seed), its final
training taken from the run's work folder or, where that is gone, run again with the same
seed and recipe, then scored on the **test** split. ``test.json`` records which run, both
val numbers (committed and from this training) and the test scores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

import torch

from ..audit.data import AuditData
from ..audit.finals import run_final_job
from ..checkpoint import LAST, load_trained
from ..data.prepared import load_prepared
from ..errors import ArtifactError
from ..evaluate import evaluate_split
from ..io import read_json, write_json
from ..pipeline.paths import PREPARED
from ..space import DEFAULT_SPACE
from ..workers import set_cpu_threads
from .aggregate import MET
from .plan import StudyLayout, run_name
from .runs import final_job, run_params


def winners(summary: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(strategy, seed) per winning strategy: the first of each comparison decided ``met``,
    at its seed with the highest endpoint (the lower seed on a tie)."""
    chosen: list[tuple[str, int]] = []
    for name, decision in summary["decision"].items():
        strategy = name.split("_vs_")[0]
        if decision != MET or any(s == strategy for s, _ in chosen):
            continue
        per_seed = summary["endpoint"][strategy]["per_seed"]
        seed = min(per_seed, key=lambda s: (-per_seed[s], int(s)))
        chosen.append((strategy, int(seed)))
    return chosen


def score_on_test(
    layout: StudyLayout, params: dict, params_path: str, strategy: str, seed: int
) -> dict[str, Any]:
    """The run's final training (reused from its work folder, else trained again) scored on
    the test split, beside its committed val mIoU."""
    run = read_json(layout.run_result(strategy, seed))
    data = AuditData.from_params(run_params(params, strategy, seed), params_path)
    genotype = DEFAULT_SPACE.from_text(run["best"]["genotype"])
    job = final_job(
        layout,
        data,
        strategy,
        seed,
        genotype,
        result_path=layout.final_work(strategy, seed) / "final-again.json",
    )
    set_cpu_threads(data.train_threads)
    again = run_final_job(job)
    prepared = load_prepared(PREPARED / data.train_dataset)
    if "test" not in prepared.splits:
        raise ArtifactError(
            f"{PREPARED / data.train_dataset} has no test split (splits: "
            f"{', '.join(prepared.splits)}); prepare the dataset with its test split"
        )
    device = torch.device(data.device)
    model, _ = load_trained(job.work_dir / LAST, device)
    scores = evaluate_split(
        model, prepared, "test", data.train.input_size, device, log_name="study test"
    )
    return {
        "strategy": strategy,
        "seed": seed,
        "run": run_name(strategy, seed),
        "hash": genotype.hash,
        "genotype": run["best"]["genotype"],
        "final_params": run["best"]["final_params"],
        "val_miou_committed": run["final"]["val_miou"],
        "val_miou_again": again["val_miou"],
        "test_miou": scores.scores["miou"],
        "test_per_class_iou": dict(scores.per_class_rows()),
        "test_images": scores.num_images,
    }


def write_test_numbers(
    layout: StudyLayout, params: dict, params_path: str, stream: TextIO
) -> dict[str, Any]:
    """``test.json`` from the committed ``summary.json``: the winners' test numbers, or none
    where no comparison was decided ``met``."""
    if not layout.summary.is_file():
        raise ArtifactError(f"{layout.summary} is missing: run `segnas study aggregate` first")
    summary = read_json(layout.summary)
    result: dict[str, Any] = {
        "decision": summary["decision"],
        "rule": "test numbers only for each comparison decided met: its first strategy's "
        "endpoint with the highest val mIoU; a description, not a test",
        "winners": [],
    }
    for strategy, seed in winners(summary):
        stream.write(f"[study test] {run_name(strategy, seed)}: final training, test split\n")
        result["winners"].append(score_on_test(layout, params, params_path, strategy, seed))
    write_json(layout.test_numbers, result)
    return result
