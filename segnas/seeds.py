"""Seed derivation: every seed below a root seed comes from these two functions.

Both formulas are fixed: changing either changes every result they feed (search rewards,
sampled architectures, training order), so a new need gets a new key, not a new formula.
Per-sample numpy streams (data transforms, synthetic scenes, stem-cache crops) take the seed
and their indices as a ``numpy.random.default_rng([seed, ...])`` sequence instead.
"""

from __future__ import annotations

import hashlib

EPOCH_SEED_STRIDE = 1_000_003  # a prime above any epoch count, so (seed, epoch) pairs differ


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed from ``seed`` and ``keys`` (stable across runs, processes and machines):
    the first 8 bytes of SHA-256 over ``seed/key1/key2...``, shifted right by one bit."""
    text = "/".join(str(k) for k in (seed, *keys))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def epoch_seed(seed: int, epoch: int) -> int:
    """The final training's shuffling seed for ``epoch``: ``seed * 1_000_003 + epoch``."""
    return seed * EPOCH_SEED_STRIDE + epoch
