"""Seed derivation: the formulas are pinned, since every result depends on them."""

from segnas.seeds import derive_seed, epoch_seed


def test_derived_seeds_are_pinned():
    assert derive_seed(0, "eval", 0, 1) == 2625137569510858186
    assert derive_seed(7, "controller") == 5554963646083446990
    assert derive_seed(0, "eval", 0, 1) != derive_seed(0, "eval", 1, 0)
    assert 0 <= derive_seed(2**40, "x") < 2**63


def test_epoch_seeds_are_pinned():
    assert epoch_seed(3, 7) == 3 * 1_000_003 + 7
    assert epoch_seed(0, 0) == 0
