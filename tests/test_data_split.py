import pytest

from segnas.data.split import load_split, stable_split, write_split
from segnas.errors import ConfigError, DataError

IDS = [f"img_{i:05d}" for i in range(2975)]


def test_paper_counts_are_exact():
    train, val = stable_split(IDS, 0.1, seed=0)
    assert (len(train), len(val)) == (2677, 298)
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(IDS)
    assert train == [i for i in IDS if i in set(train)]  # input order kept


def test_adding_or_removing_k_items_moves_at_most_k():
    _, val = stable_split(IDS, 0.1, seed=0)
    more = IDS + [f"new_{i}" for i in range(10)]
    _, val_more = stable_split(more, 0.1, seed=0)
    moved = set(val) ^ {i for i in val_more if i in set(IDS)}
    assert len(moved) <= 10
    _, val_less = stable_split(IDS[10:], 0.1, seed=0)
    moved = (set(val) - set(IDS[:10])) ^ set(val_less)
    assert len(moved) <= 10


def test_seeded_and_repeatable():
    assert stable_split(IDS, 0.1, 0) == stable_split(IDS, 0.1, 0)
    assert set(stable_split(IDS, 0.1, 0)[1]) == set(stable_split(IDS[::-1], 0.1, 0)[1])
    assert stable_split(IDS, 0.1, 0)[1] != stable_split(IDS, 0.1, 1)[1]


def test_bad_arguments():
    with pytest.raises(ConfigError, match="val_fraction"):
        stable_split(IDS, 1.5, 0)
    with pytest.raises(DataError, match="duplicate image ids"):
        stable_split(["a", "b", "a"], 0.5, 0)
    with pytest.raises(DataError, match="leave one side empty"):
        stable_split(["a", "b", "c"], 0.1, 0)


def test_write_and_load_round_trip(tmp_path):
    train, val = stable_split(IDS[:50], 0.1, 0)
    write_split(tmp_path, train, val, {"dataset": "x", "seed": 0})
    assert load_split(tmp_path) == (train, val)
    (tmp_path / "meta_val.txt").write_text("only_one\n")
    with pytest.raises(DataError, match="meta_val.txt lists 1 ids but .*split.json says 5"):
        load_split(tmp_path)
