"""What each strategy's searches evaluated and what it cost, described (not tested): from the
copies of the searches' ``archs.csv`` and ``timings.csv`` kept under a study's ``searches/``
(runs without a copy are left out and named). Parameters and FLOPs are of the networks as the
search evaluates them (search width), seconds the wall clock of one evaluation, which depends
on the machine and on what shared it."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

from ..stats import json_number
from ..trial.recipe import STATUS_OK
from .plan import StudyLayout, StudyPlan, run_name


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _median(values: list[float]) -> float | None:
    return json_number(float(statistics.median(values))) if values else None


def _text(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def search_costs(layout: StudyLayout, plan: StudyPlan) -> dict[str, dict[str, Any]]:
    """Per strategy, over the finished runs whose search copy exists: the runs, evaluations,
    distinct architectures, failed evaluations, and the medians of parameters, GFLOPs and
    seconds per evaluation."""
    costs = {}
    for strategy in plan.strategies:
        names, archs, timings = [], [], []
        for seed in plan.seeds:
            copy = layout.search_copy(strategy, seed)
            if layout.run_result(strategy, seed).is_file() and (copy / "archs.csv").is_file():
                names.append(run_name(strategy, seed))
                archs.append(_rows(copy / "archs.csv"))
                timings.extend(_rows(copy / "timings.csv"))
        every = [row for run in archs for row in run]
        ok = [row for row in every if row["status"] == STATUS_OK]
        costs[strategy] = {
            "runs": names,
            "evaluations": len(every),
            "distinct_per_run": [len({row["hash"] for row in run}) for run in archs],
            "failed": len(every) - len(ok),
            "median_params": _median([float(row["params"]) for row in ok]),
            "median_gflops": _median([float(row["flops"]) / 1e9 for row in ok]),
            "median_seconds": _median([float(row["seconds_total"]) for row in timings]),
        }
    return costs


def cost_table(costs: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown lines: one row per strategy with a search copy."""
    lines = [
        "| strategy | runs | evaluations (distinct per run) | failed | median params | "
        "median GFLOPs | median s per evaluation |",
        "|---|---|---|---|---|---|---|",
    ]
    for strategy, cost in costs.items():
        if not cost["runs"]:
            continue
        distinct = ", ".join(str(n) for n in cost["distinct_per_run"])
        medians = [
            _text(cost[key], digits)
            for key, digits in (("median_params", 0), ("median_gflops", 2), ("median_seconds", 1))
        ]
        lines.append(
            f"| {strategy} | {', '.join(cost['runs'])} | {cost['evaluations']} ({distinct}) | "
            f"{cost['failed']} | " + " | ".join(medians) + " |"
        )
    return lines
