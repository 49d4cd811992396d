"""Statistics of the search evidence, on small inputs whose values were worked out by hand."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from segnas.stats import (
    compare_evidence,
    mann_whitney_p,
    mean_difference_ci,
    spearman,
    spearman_ci,
)


def test_spearman_with_a_tie_matches_the_hand_computed_value():
    # ranks of y: 1, 2, 3.5, 5, 3.5; Pearson of the ranks: 8 / sqrt(10 * 9.5)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_spearman_is_undefined_for_a_constant_sample():
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4]))
    with pytest.raises(ValueError, match="differ in length"):
        spearman([1, 2], [1, 2, 3])


def test_spearman_interval_of_a_monotone_relation_is_one_and_repeatable():
    x = [0.1, 0.4, 0.2, 0.9, 0.5, 0.7]
    y = [v * v for v in x]
    estimate = spearman_ci(x, y, seed=3)
    assert estimate.n == 6
    assert [estimate.value, estimate.low, estimate.high] == pytest.approx([1.0, 1.0, 1.0])
    noisy = [0.3, 0.1, 0.5, 0.4, 0.9, 0.2]
    first, again = spearman_ci(x, noisy, seed=3), spearman_ci(x, noisy, seed=3)
    assert first == again and first.low <= first.value <= first.high


def test_mean_difference_interval_brackets_the_difference():
    estimate = mean_difference_ci([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], seed=0)
    assert estimate.value == pytest.approx(2.0)
    # a resampled mean of {1, 2, 3} lies in [1, 3]; the other group is always 0
    assert 1.0 <= estimate.low < 2.0 < estimate.high <= 3.0
    assert math.isnan(mean_difference_ci([1.0], [2.0], seed=0).low)


def test_mann_whitney_exact_p_value():
    # U = 0: one of C(6, 3) = 20 equally likely orderings in each tail, two-sided p = 2 / 20
    assert mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert mann_whitney_p([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert math.isnan(mann_whitney_p([], [1.0]))


def test_compare_evidence_names_each_group_and_setup():
    rewards = {
        "controller": {"search": [3.0, 4.0, 5.0], "long": [3.0, 4.0, 6.0]},
        "random": {"search": [1.0, 2.0, 3.0], "long": [2.0, 1.0, 1.5]},
    }
    evidence = compare_evidence(rewards)
    assert evidence["spearman_ci"]["controller"]["value"] == pytest.approx(1.0)
    # random: ranks (1, 2, 3) vs (3, 1, 2): rho = 1 - 6 * (4 + 1 + 1) / (3 * 8) = -0.5
    assert evidence["spearman_ci"]["random"]["value"] == pytest.approx(-0.5)
    search = evidence["controller_minus_random"]["search"]
    assert search["value"] == pytest.approx(2.0) and search["n"] == 6
    # U = 8.5 (one tie): normal approximation, mean 4.5, tie-corrected variance
    # 9 / 12 * (7 - 6 / 30) = 5.1, continuity 0.5: p = 2 * sf(3.5 / sqrt(5.1))
    assert search["mann_whitney_p"] == pytest.approx(2 * NormalDist().cdf(-3.5 / math.sqrt(5.1)))
    assert evidence["controller_minus_random"]["long"]["value"] == pytest.approx(13 / 3 - 1.5)
    assert evidence == compare_evidence(rewards)  # the seeded bootstrap repeats


def test_compare_evidence_writes_undefined_values_as_none():
    rewards = {
        "controller": {"search": [1.0, 1.0], "long": [1.0, 2.0]},
        "random": {"search": [1.0], "long": [2.0]},
    }
    evidence = compare_evidence(rewards)
    assert evidence["spearman_ci"]["controller"]["value"] is None
    assert evidence["controller_minus_random"]["search"]["low"] is None
