"""Statistics of the search evidence: rank correlation and group differences with bootstrap
confidence intervals (scipy.stats), seeded so that a report is repeatable."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from .seeds import derive_seed

DEFAULT_RESAMPLES = 2000
# The bootstrap's fixed seed: the intervals of a run repeat bit for bit.
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap confidence interval (NaN where it is undefined)."""

    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def _nan_estimate(n: int) -> Estimate:
    return Estimate(math.nan, math.nan, math.nan, n)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho of paired samples (ties get their mean rank); NaN when either is constant."""
    if len(x) != len(y):
        raise ValueError(f"paired samples differ in length: {len(x)} and {len(y)}")
    if len(x) < 2 or np.ptp(np.asarray(x, float)) == 0 or np.ptp(np.asarray(y, float)) == 0:
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def spearman_ci(
    x: Sequence[float],
    y: Sequence[float],
    seed: int,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> Estimate:
    """Spearman's rho with a percentile bootstrap interval over resampled pairs."""
    value = spearman(x, y)
    if math.isnan(value) or len(x) < 3:
        return Estimate(value, math.nan, math.nan, len(x))
    x_arr, y_arr = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples):
        pick = rng.integers(0, len(x_arr), len(x_arr))
        rho = spearman(x_arr[pick], y_arr[pick])
        if not math.isnan(rho):
            draws.append(rho)
    if not draws:
        return Estimate(value, math.nan, math.nan, len(x))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(value, float(low), float(high), len(x))


def mean_difference_ci(
    a: Sequence[float],
    b: Sequence[float],
    seed: int,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> Estimate:
    """mean(a) - mean(b) with a percentile bootstrap interval (each group resampled alone)."""
    if len(a) == 0 or len(b) == 0:
        return _nan_estimate(len(a) + len(b))
    value = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return Estimate(value, math.nan, math.nan, len(a) + len(b))
    result = stats.bootstrap(
        (np.asarray(a, float), np.asarray(b, float)),
        lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Estimate(value, float(interval.low), float(interval.high), len(a) + len(b))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U test p-value that ``a`` and ``b`` come from one distribution."""
    if len(a) == 0 or len(b) == 0:
        return math.nan
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def json_number(value: float) -> float | None:
    """``value``, or ``None`` where it is NaN (JSON has no NaN)."""
    return None if math.isnan(value) else float(value)


def _estimate_json(estimate: Estimate) -> dict:
    return {k: json_number(v) if isinstance(v, float) else v for k, v in asdict(estimate).items()}


def compare_evidence(
    rewards: Mapping[str, Mapping[str, Sequence[float]]], seed: int = BOOTSTRAP_SEED
) -> dict:
    """The controller-vs-random evidence from ``rewards[group][setup]`` (groups ``controller``
    and ``random``, setups ``search`` and ``long``): per group Spearman's rho between the
    setups with its bootstrap 95 % interval; per setup mean(controller) - mean(random) with
    its interval and the Mann-Whitney U p-value. NaN is written as ``None``."""
    spearman_by_group = {
        group: _estimate_json(
            spearman_ci(r["search"], r["long"], seed=derive_seed(seed, "spearman", group))
        )
        for group, r in rewards.items()
    }
    difference = {}
    for setup in ("search", "long"):
        a, b = rewards["controller"][setup], rewards["random"][setup]
        estimate = mean_difference_ci(a, b, seed=derive_seed(seed, "difference", setup))
        difference[setup] = {
            **_estimate_json(estimate),
            "mann_whitney_p": json_number(mann_whitney_p(a, b)),
        }
    return {"spearman_ci": spearman_by_group, "controller_minus_random": difference}
