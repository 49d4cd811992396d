"""The search's evidence as numbers: the Pareto front, quarter means, and the headline
numbers of a run (``report/summary.json``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from ..stats import json_number


def pareto_front(cost: Sequence[float], reward: Sequence[float]) -> list[bool]:
    """Which points are non-dominated: no other point costs no more and rewards no less, and
    is better in one of the two. A point with a NaN coordinate is never on the front."""
    if len(cost) != len(reward):
        raise ValueError(f"cost and reward differ in length: {len(cost)} and {len(reward)}")
    points = [(float(c), float(r)) for c, r in zip(cost, reward, strict=True)]
    valid = [not (math.isnan(c) or math.isnan(r)) for c, r in points]

    def dominated(i: int) -> bool:
        c, r = points[i]
        return any(
            valid[j] and points[j][0] <= c and points[j][1] >= r and points[j] != points[i]
            for j in range(len(points))
        )

    return [valid[i] and not dominated(i) for i in range(len(points))]


def quarter_means(rewards: Sequence[float]) -> tuple[float, float]:
    """Mean of the first and of the last quarter (``max(1, n // 4)`` values) in search order."""
    if not rewards:
        return math.nan, math.nan
    quarter = max(1, len(rewards) // 4)
    first, last = rewards[:quarter], rewards[-quarter:]
    return sum(first) / len(first), sum(last) / len(last)


def search_summary(archs: pd.DataFrame) -> dict:
    """``search.*``: architectures evaluated, rounds, best reward and the quarter means."""
    rewards = archs.sort_values(["round", "index"])["reward"].astype(float).tolist()
    first, last = quarter_means(rewards)
    return {
        "num_archs": len(rewards),
        "num_rounds": int(archs["round"].nunique()),
        "best_reward": json_number(max(rewards, default=math.nan)),
        "mean_reward_first_quarter": json_number(first),
        "mean_reward_last_quarter": json_number(last),
    }


def compare_summary(compare: pd.DataFrame, evidence: Mapping) -> dict:
    """``compare.*``: N per group, rho with its interval per group, and per setup the mean
    rewards, the difference of means with its interval and the Mann-Whitney p-value (the
    search setup's at the top level, the long setup's under ``long_setup``)."""
    groups = ("controller", "random")

    def setup_numbers(setup: str) -> dict:
        difference = evidence["controller_minus_random"][setup]
        means = compare.groupby("group")[f"reward_{setup}"].mean()
        return {
            "mean_reward": {g: json_number(float(means.get(g, math.nan))) for g in groups},
            "mean_difference": {k: difference[k] for k in ("value", "low", "high")},
            "mann_whitney_p": difference["mann_whitney_p"],
        }

    spearman = evidence["spearman_ci"]
    return {
        "num_archs_per_group": int(compare.groupby("group").size().max()),
        "spearman_rho": {g: spearman[g]["value"] for g in groups},
        "spearman_rho_ci": {g: [spearman[g]["low"], spearman[g]["high"]] for g in groups},
        **setup_numbers("search"),
        "long_setup": setup_numbers("long"),
    }


def train_summary(models: Mapping[str, Mapping]) -> dict:
    """``train.<model>.*``: mIoU on its evaluation split (``<split>_miou``, a fraction),
    params and latency (ms per input size) of each evaluated model."""
    return {
        name: {
            f"{m['split']}_miou": json_number(float(m["miou"])),
            "params": int(m["params"]),
            "latency_ms": dict(m["latency_ms"]),
        }
        for name, m in models.items()
    }
