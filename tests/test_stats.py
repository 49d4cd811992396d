"""Statistics of the search evidence, on small inputs whose values were worked out by hand."""

from __future__ import annotations

import math

import pytest

from segnas.stats import mann_whitney_p, mean_difference_ci, spearman, spearman_ci


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
