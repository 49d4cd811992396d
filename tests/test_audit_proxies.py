"""The zero-cost proxies on a small decoder and a synthetic batch of stem features."""

from __future__ import annotations

import math

import pytest
import torch

from segnas.audit.proxies import PROXIES, jacov, score_proxies, snip, synflow
from segnas.model import build_model
from segnas.published import published
from segnas.space import DEFAULT_SPACE


@pytest.fixture(scope="module")
def decoder():
    return build_model(published("arch0"), 5, agg_width=16, sep_conv_units=1, seed=1).decoder


def _batch(seed: int, size: int = 6):
    generator = torch.Generator().manual_seed(seed)
    quarter = torch.randn(size, 24, 8, 8, generator=generator)
    eighth = torch.randn(size, 32, 4, 4, generator=generator)
    labels = torch.randint(0, 5, (size, 8, 8), generator=generator)
    return quarter, eighth, labels


def test_every_proxy_is_finite_repeatable_and_leaves_the_decoder_unchanged(decoder):
    before = {k: v.clone() for k, v in decoder.state_dict().items()}
    scores = score_proxies(decoder, _batch(0))
    assert set(scores) == set(PROXIES) and all(math.isfinite(v) for v in scores.values())
    assert score_proxies(decoder, _batch(0)) == scores
    after = decoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in decoder.parameters())


def test_synflow_is_data_free_and_snip_depends_on_the_labels(decoder):
    first, second = _batch(0), _batch(1)
    assert synflow(decoder, first) == synflow(decoder, second)
    relabelled = (first[0], first[1], (first[2] + 1) % 5)
    assert snip(decoder, first) != snip(decoder, relabelled)


def test_jacov_is_highest_for_uncorrelated_input_gradients(decoder):
    # the score is -sum(log(l + e) + 1 / (l + e)) over the correlation matrix's eigenvalues: at
    # most -n (every eigenvalue 1, gradients uncorrelated), far lower for identical inputs
    n = 6
    distinct = jacov(decoder, _batch(0, n))
    quarter, eighth, labels = _batch(0, n)
    same = (quarter[:1].repeat(n, 1, 1, 1), eighth[:1].repeat(n, 1, 1, 1), labels)
    assert distinct <= -n + 1e-6
    assert jacov(decoder, same) < distinct


def test_proxies_of_a_decoder_that_ignores_the_eighth_resolution_input():
    genotype = DEFAULT_SPACE.parse(
        "T:sep_conv_3x3+skip_connect@sum,sep_conv_3x3+skip_connect@sum,"
        "sep_conv_3x3+skip_connect@sum "
        "B:0-0-t0-r1-s1,0-0-t1-r1-s1,0-0-t2-r1-s1,0-0-t0-r1-s1,0-0-t1-r1-s1,0-0-t2-r1-s1,"
        "0-0-t0-r1-s1"
    )
    decoder = build_model(genotype, 5, agg_width=16, sep_conv_units=1, seed=1).decoder
    assert all(math.isfinite(v) for v in score_proxies(decoder, _batch(0)).values())
