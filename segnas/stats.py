"""Statistics of the search evidence: rank correlation and group differences with bootstrap
confidence intervals (scipy.stats), seeded so that a report is repeatable; the repeatability of
a noisy measurement (ICC) and the difference a comparison of two groups can detect."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
from scipy import optimize, stats

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


@dataclass(frozen=True)
class Repeatability:
    """One-way random-effects decomposition of a table of repeated measurements (one row per
    subject, e.g. an architecture; one column per repetition, e.g. a seed).

    ``icc`` is ICC(1) = (MSB - MSW) / (MSB + (k - 1) MSW); ``seed_sd`` is sqrt(MSW), the
    within-subject (seed) sd; ``between_sd`` is sqrt(max(0, (MSB - MSW) / k)), the estimated
    sd of the subjects' true values.
    """

    icc: float
    seed_sd: float
    between_sd: float
    subjects: int
    repeats: int

    def to_dict(self) -> dict:
        return {k: json_number(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


def repeatability(table: Sequence[Sequence[float]]) -> Repeatability:
    """ICC(1) and the variance components of ``table`` (rows of equal length k >= 2); NaN where
    undefined (fewer than 2 rows, or no variation at all)."""
    values = np.asarray(table, float)
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"need a table of subjects x (>= 2 repeats), got shape {values.shape}")
    n, k = values.shape
    if n < 2:
        return Repeatability(math.nan, math.nan, math.nan, n, k)
    row_means = values.mean(axis=1)
    msb = k * float(np.sum((row_means - values.mean()) ** 2)) / (n - 1)
    msw = float(np.sum((values - row_means[:, None]) ** 2)) / (n * (k - 1))
    denominator = msb + (k - 1) * msw
    icc = (msb - msw) / denominator if denominator > 0 else math.nan
    return Repeatability(icc, math.sqrt(msw), math.sqrt(max(0.0, (msb - msw) / k)), n, k)


def icc_ci(
    table: Sequence[Sequence[float]],
    seed: int,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> Estimate:
    """ICC(1) of ``table`` with a percentile bootstrap interval over resampled rows."""
    values = np.asarray(table, float)
    value = repeatability(values).icc
    if math.isnan(value) or len(values) < 3:
        return Estimate(value, math.nan, math.nan, len(values))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples):
        icc = repeatability(values[rng.integers(0, len(values), len(values))]).icc
        if not math.isnan(icc):
            draws.append(icc)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(value, float(low), float(high), len(values))


def two_sample_power(delta: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample t-test (equal variances, ``n`` per group) to detect a
    difference ``delta`` in means when each observation has standard deviation ``sd``."""
    df = 2 * n - 2
    noncentrality = delta / (sd * math.sqrt(2 / n))
    critical = stats.t.ppf(1 - alpha / 2, df)
    return float(
        stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
    )


def detectable_difference(sd: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest difference in means that the two-sided two-sample t-test with ``n`` per
    group detects with ``power`` at ``alpha``, for observations of standard deviation ``sd``."""
    if n < 2:
        raise ValueError(f"need at least 2 per group, got {n}")
    if not sd > 0:
        return math.nan if math.isnan(sd) else 0.0
    normal = NormalDist()
    # twice the normal approximation's answer brackets it (scipy's noncentral t gives NaN far
    # beyond it)
    high = 2 * (normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)) * sd * math.sqrt(2 / n)
    while two_sample_power(high, sd, n, alpha) < power:
        high *= 2
    return float(optimize.brentq(lambda d: two_sample_power(d, sd, n, alpha) - power, 0.0, high))
