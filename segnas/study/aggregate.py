"""A study's aggregation, from the committed runs alone: the endpoint per strategy and seed,
each planned comparison paired by seed (mean difference with its t interval, the plan's
one-sided test, the decision by the plan's rule), the anytime curves (best reward so far
against evaluations: mean and 95 % interval across seeds), ``summary.json``, ``table.md`` and
two figures. Runs still missing are listed, never guessed. A comparison whose planned seeds
have not all finished has the decision ``pending`` (the plan decides at its S) until the plan
is ``closed``; then it is decided over the seeds reached, or ``too few seeds`` below the plan's
``min_seeds``."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ..io import read_json, write_json, write_text
from ..stats import json_number
from .cost import cost_table, search_costs
from .plan import StudyLayout, StudyPlan, run_name

MET, NOT_ESTABLISHED, NOT_MET = "met", "not established", "not met"
PENDING, TOO_FEW = "pending", "too few seeds"


def paired_test(a: Sequence[float], b: Sequence[float], test: str, alpha: float) -> dict:
    """``a - b`` paired by seed: the mean difference with its two-sided 95 % t interval, the
    one-sided p that ``a`` exceeds ``b`` (``wilcoxon`` signed-rank or ``paired_t``), and the
    decision: ``met`` where p < ``alpha``, ``not established`` where only the direction
    holds, ``not met`` where the mean difference is not positive."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    n = len(diff)
    effect = float(diff.mean()) if n else math.nan
    low = high = p = math.nan
    if n >= 2:
        half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n))
        low, high = effect - half, effect + half
        if test == "wilcoxon":
            p = float(stats.wilcoxon(diff, alternative="greater").pvalue)
        else:
            p = float(stats.ttest_1samp(diff, 0.0, alternative="greater").pvalue)
    if not math.isnan(p) and p < alpha:
        decision = MET
    elif effect > 0:
        decision = NOT_ESTABLISHED
    else:
        decision = NOT_MET
    return {
        "n": n,
        "effect": json_number(effect),
        "ci_low": json_number(low),
        "ci_high": json_number(high),
        "p": json_number(p),
        "test": test,
        "decision": decision,
    }


def decision_of(by_test: str, n: int, plan: StudyPlan) -> str:
    """The test's decision where the plan decides at ``n`` paired seeds: with all its seeds, or
    once ``closed`` with at least ``min_seeds``; otherwise ``pending`` while the study runs and
    ``too few seeds`` once it is closed."""
    if n >= len(plan.seeds) or (plan.closed and n >= plan.min_seeds):
        return by_test
    return TOO_FEW if plan.closed else PENDING


def read_curve(path: Path, column: str = "best_so_far") -> list[float]:
    """One column of a run's ``curve.csv`` (default: the best reward so far), in search order."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [float(row[column]) for row in csv.DictReader(handle)]


def last_quarter_mean(rewards: Sequence[float]) -> float:
    """The mean reward of the last quarter of a search's evaluations (at least one)."""
    tail = rewards[len(rewards) - max(1, len(rewards) // 4) :]
    return float(np.mean(tail))


def mean_band(curves: Sequence[Sequence[float]]) -> dict[str, list[float | None]]:
    """Per evaluation: the mean across curves and its 95 % t interval (curves cut to the
    shortest)."""
    length = min(len(c) for c in curves)
    table = np.asarray([c[:length] for c in curves], float)
    mean = table.mean(axis=0)
    if len(curves) < 2:
        low = high = [math.nan] * length
    else:
        half = stats.t.ppf(0.975, len(curves) - 1) * table.std(axis=0, ddof=1)
        half = half / math.sqrt(len(curves))
        low, high = mean - half, mean + half
    return {
        "mean": [json_number(float(v)) for v in mean],
        "low": [json_number(float(v)) for v in low],
        "high": [json_number(float(v)) for v in high],
    }


def collect(layout: StudyLayout, plan: StudyPlan) -> tuple[dict[str, dict[int, dict]], list[str]]:
    """strategy -> seed -> run summary of every finished run, and the names of missing ones."""
    runs: dict[str, dict[int, dict]] = {s: {} for s in plan.strategies}
    missing = []
    for strategy, seed in plan.runs():
        path = layout.run_result(strategy, seed)
        if path.is_file():
            runs[strategy][seed] = read_json(path)
        else:
            missing.append(run_name(strategy, seed))
    return runs, missing


def summarise(layout: StudyLayout, plan: StudyPlan) -> dict[str, Any]:
    """The study's ``summary.json`` content from its finished runs."""
    runs, missing = collect(layout, plan)
    endpoint = {}
    for strategy, by_seed in runs.items():
        values = {seed: run["final"]["val_miou"] for seed, run in sorted(by_seed.items())}
        endpoint[strategy] = {
            "per_seed": {str(seed): value for seed, value in values.items()},
            "mean": json_number(float(np.mean(list(values.values())))) if values else None,
            "best_reward_per_seed": {
                str(seed): run["best"]["reward"] for seed, run in sorted(by_seed.items())
            },
            "params_per_seed": {
                str(seed): run["best"].get("final_params") for seed, run in sorted(by_seed.items())
            },
            "last_quarter_reward_per_seed": {
                str(seed): last_quarter_mean(read_curve(layout.curve(strategy, seed), "reward"))
                for seed in sorted(by_seed)
            },
        }
    tests, decision = {}, {}
    for a, b in plan.comparisons:
        seeds = sorted(set(runs[a]) & set(runs[b]))
        result = paired_test(
            [runs[a][s]["final"]["val_miou"] for s in seeds],
            [runs[b][s]["final"]["val_miou"] for s in seeds],
            plan.test,
            plan.alpha,
        )
        result["decision"] = decision_of(result["decision"], len(seeds), plan)
        name = f"{a}_vs_{b}"
        tests[name] = {**result, "seeds": seeds}
        decision[name] = result["decision"]
    anytime = {
        strategy: mean_band([read_curve(layout.curve(strategy, s)) for s in sorted(by_seed)])
        for strategy, by_seed in runs.items()
        if by_seed
    }
    wall = sum(run["wall_clock_s"] for by_seed in runs.values() for run in by_seed.values())
    return {
        "plan": plan.to_dict(),
        "strategies": list(plan.strategies),
        "seeds": list(plan.seeds),
        "complete": not missing,
        "missing_runs": missing,
        "endpoint": endpoint,
        "tests": tests,
        "decision": decision,
        "anytime": anytime,
        "search_cost": search_costs(layout, plan),
        "wall_clock_s": wall,
    }


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_text(summary: Mapping[str, Any]) -> str:
    """Markdown: the endpoint per seed and strategy, then each comparison."""
    strategies = summary["strategies"]
    lines = [
        "| seed | " + " | ".join(strategies) + " |",
        "|---|" + "---|" * len(strategies),
    ]
    for seed in summary["seeds"]:
        cells = [_number(summary["endpoint"][s]["per_seed"].get(str(seed))) for s in strategies]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    means = [_number(summary["endpoint"][s]["mean"]) for s in strategies]
    lines += ["| mean | " + " | ".join(means) + " |", ""]
    lines += [
        "| comparison | n | effect (val mIoU) | 95 % interval | p (one-sided) | decision |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in summary["tests"].items():
        interval = f"[{_number(t['ci_low'])}, {_number(t['ci_high'])}]"
        lines.append(
            f"| {name.replace('_vs_', ' vs ')} | {t['n']} | {_number(t['effect'])} | "
            f"{interval} | {_number(t['p'], 3)} | {t['decision']} |"
        )
    if summary["missing_runs"]:
        if summary["plan"]["closed"]:
            rule = (
                "The study is closed (its budget spent): each comparison is decided over the "
                f"n seeds both strategies reached, if at least {summary['plan']['min_seeds']}."
            )
        else:
            rule = (
                "A comparison is decided only when all its planned seeds have finished "
                "(pending until then); the numbers above describe the finished seeds."
            )
        lines += ["", f"Missing runs: {', '.join(summary['missing_runs'])}. {rule}"]
    if any(cost["runs"] for cost in summary["search_cost"].values()):
        lines += [
            "",
            "What the searches evaluated (description, from `searches/`; parameters and "
            "GFLOPs at search width; seconds depend on the machine and what shared it):",
            "",
            *cost_table(summary["search_cost"]),
        ]
    return "\n".join(lines) + "\n"


def plot(layout: StudyLayout, summary: Mapping[str, Any]) -> None:
    """``anytime.png`` (mean best-so-far reward with its 95 % band per strategy) and
    ``endpoint.png`` (final val mIoU per seed, one line per strategy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy, band in summary["anytime"].items():
        x = np.arange(1, len(band["mean"]) + 1)
        mean = np.asarray(band["mean"], float)
        ax.plot(x, mean, label=strategy)
        low = np.asarray([math.nan if v is None else v for v in band["low"]], float)
        high = np.asarray([math.nan if v is None else v for v in band["high"]], float)
        ax.fill_between(x, low, high, alpha=0.2)
    ax.set(xlabel="architectures evaluated", ylabel="best search reward so far")
    ax.legend()
    fig.tight_layout()
    fig.savefig(layout.anytime_figure, dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy in summary["strategies"]:
        per_seed = summary["endpoint"][strategy]["per_seed"]
        seeds = sorted(per_seed, key=int)
        ax.plot([int(s) for s in seeds], [per_seed[s] for s in seeds], "o-", label=strategy)
    ax.set(xlabel="search seed", ylabel="final val mIoU of the best architecture")
    ax.legend()
    fig.tight_layout()
    fig.savefig(layout.endpoint_figure, dpi=120)
    plt.close(fig)


def write_outputs(layout: StudyLayout, plan: StudyPlan) -> dict[str, Any]:
    """Write ``summary.json``, ``table.md`` and the figures; the summary."""
    summary = summarise(layout, plan)
    write_json(layout.summary, summary)
    write_text(layout.table, table_text(summary))
    if any(summary["anytime"].values()):
        plot(layout, summary)
    return summary
