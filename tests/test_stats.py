"""Statistics of the search evidence, on small inputs whose values were worked out by hand."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from segnas.stats import (
    compare_evidence,
    detectable_difference,
    icc_ci,
    mann_whitney_p,
    mean_difference_ci,
    repeatability,
    spearman,
    spearman_ci,
    two_sample_power,
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


def test_repeatability_of_a_small_table_matches_the_hand_computed_anova():
    # row means 1.5, 3.5, 5.5 (grand 3.5): MSB = 2 * (4 + 0 + 4) / 2 = 8, MSW = 6 * 0.25 / 3 = 0.5
    result = repeatability([[1, 2], [3, 4], [5, 6]])
    assert result.icc == pytest.approx(7.5 / 8.5)
    assert result.seed_sd == pytest.approx(math.sqrt(0.5))
    assert result.between_sd == pytest.approx(math.sqrt(7.5 / 2))
    assert (result.subjects, result.repeats) == (3, 2)


def test_repeatability_of_pure_noise_is_negative_and_of_constant_rows_is_one():
    # identical row means: MSB = 0, so ICC(1) = -MSW / ((k - 1) MSW) = -1 / (k - 1)
    assert repeatability([[1, 3, 2], [3, 1, 2], [2, 2, 2]]).icc == pytest.approx(-0.5)
    assert repeatability([[1, 1], [2, 2], [4, 4]]).icc == pytest.approx(1.0)
    assert math.isnan(repeatability([[1, 2]]).icc)
    with pytest.raises(ValueError, match="repeats"):
        repeatability([[1], [2]])


def test_icc_interval_brackets_the_estimate_and_repeats_bit_for_bit():
    table = [[0.30, 0.33, 0.31], [0.25, 0.22, 0.27], [0.40, 0.37, 0.41], [0.28, 0.33, 0.30]]
    first, again = icc_ci(table, seed=3), icc_ci(table, seed=3)
    assert first == again
    assert first.low <= first.value <= first.high <= 1.0


def test_detectable_difference_matches_cohens_tables_and_the_normal_approximation():
    # Cohen (1988), Table 2.4.1: d = 1.32 (n = 10), 0.91 (n = 20), 0.63 (n = 40) per group
    assert detectable_difference(1.0, 10) == pytest.approx(1.32, abs=0.01)
    assert detectable_difference(1.0, 20) == pytest.approx(0.91, abs=0.01)
    assert detectable_difference(1.0, 40) == pytest.approx(0.63, abs=0.01)
    # large n: (z_0.975 + z_0.8) * sd * sqrt(2 / n)
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.8)
    assert detectable_difference(0.03, 2000) == pytest.approx(z * 0.03 * math.sqrt(1 / 1000), 1e-3)
    # it scales with the sd; the power there is 80 %; no difference is detected alpha of the time
    assert detectable_difference(0.03, 10) == pytest.approx(0.03 * detectable_difference(1, 10))
    assert two_sample_power(detectable_difference(1.0, 10), 1.0, 10) == pytest.approx(0.8)
    assert two_sample_power(0.0, 1.0, 10) == pytest.approx(0.05)
