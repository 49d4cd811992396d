"""The random and evolution strategies: mutation, tournaments, aging, whole searches on the cheap
``target`` objective (against random search), and resumption."""

from __future__ import annotations

import io
import random
import shutil
import statistics
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace

import pytest
from config_values import search_config

from segnas.errors import ConfigError
from segnas.search.config import SearchConfig, params_hash_of
from segnas.search.controller import genotype_to_choices
from segnas.search.layout import SearchLayout
from segnas.search.runner import run_search
from segnas.search.strategies import (
    EvolutionConfig,
    evolution_proposal,
    evolved_population,
    mutate,
    random_proposal,
)
from segnas.space import DEFAULT_SPACE
from segnas.trial.spec import TrialSpec

OUTPUTS = ("archs.csv", "controller.csv", "top.json", "metrics.json")


def test_a_mutation_changes_exactly_one_decision_and_is_seeded():
    parent = DEFAULT_SPACE.sample(3)
    for seed in range(20):
        child = mutate(parent, random.Random(seed), DEFAULT_SPACE)
        before = genotype_to_choices(parent, DEFAULT_SPACE)
        after = genotype_to_choices(child, DEFAULT_SPACE)
        assert sum(a != b for a, b in zip(before, after, strict=True)) == 1
        assert mutate(parent, random.Random(seed), DEFAULT_SPACE) == child


def _member(seed: int, reward: float, born: int) -> dict:
    genotype = DEFAULT_SPACE.sample(seed)
    return {"genotype": genotype.to_text(), "hash": genotype.hash, "reward": reward, "born": born}


def test_evolution_draws_uniformly_until_the_population_is_full_then_mutates_a_winner():
    config = EvolutionConfig(population=3, tournament=3)
    young = [_member(1, 0.5, 0), _member(2, 0.9, 1)]
    assert evolution_proposal(young, config, DEFAULT_SPACE, 7, 0, 1) == random_proposal(
        DEFAULT_SPACE, 7, 0, 1
    )
    full = [*young, _member(3, 0.9, 2)]
    child = evolution_proposal(full, config, DEFAULT_SPACE, 7, 4, 0)
    # the whole population contends: the best reward wins, the older of two equal ones
    winner = genotype_to_choices(DEFAULT_SPACE.parse(full[1]["genotype"]), DEFAULT_SPACE)
    mine = genotype_to_choices(child, DEFAULT_SPACE)
    assert sum(a != b for a, b in zip(winner, mine, strict=True)) == 1


def test_the_oldest_leave_the_population():
    config = EvolutionConfig(population=3, tournament=2)
    population = [_member(1, 0.1, 0), _member(2, 0.2, 1)]
    children = [(DEFAULT_SPACE.sample(5), 0.3), (DEFAULT_SPACE.sample(6), 0.4)]
    after = evolved_population(population, children, 2, config)
    assert [m["born"] for m in after] == [1, 2, 3]
    assert [m["reward"] for m in after] == [0.2, 0.3, 0.4]


def test_a_tournament_larger_than_the_population_is_refused():
    from segnas.config import load_config

    values = {"population": 4, "tournament": 5}
    with pytest.raises(ConfigError, match="tournament \\(5\\) must not exceed"):
        load_config(EvolutionConfig, values, "search.evolution")


def _search(root, strategy: str, seed: int, rounds: int = 15, archs: int = 4) -> list[float]:
    config = search_config(
        seed=seed,
        rounds=rounds,
        archs_per_round=archs,
        strategy=strategy,
        objective="target",
        evolution=EvolutionConfig(population=20, tournament=5),
    )
    config = replace(config, ppo=replace(config.ppo, lr=1e-2))
    spec = TrialSpec("target", config.eval, "arch0")
    with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):
        records = run_search(SearchLayout(root), config, params_hash_of(config), spec)
    return [record.result.reward for record in records]


@pytest.mark.slow
def test_evolution_and_the_controller_beat_random_search_on_the_target(tmp_path):
    # Measured before this test was written (8 seeds, 60 architectures, best reward found):
    # random 0.444 (sd 0.018), evolution 0.484 (0.027), controller 0.503 (0.045); the test
    # asserts half of each measured lead over random, on the same 8 seeds.
    best = {}
    for strategy in ("random", "evolution", "controller"):
        best[strategy] = statistics.fmean(
            max(_search(tmp_path / f"{strategy}{seed}", strategy, seed)) for seed in range(8)
        )
    assert best["evolution"] >= best["random"] + 0.02, best
    assert best["controller"] >= best["random"] + 0.02, best


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_each_strategy_is_seeded_and_resumes_to_the_same_bytes(tmp_path, strategy):
    whole = tmp_path / "whole"
    rewards = _search(whole, strategy, 3, rounds=8, archs=3)
    assert _search(tmp_path / "again", strategy, 3, rounds=8, archs=3) == rewards
    assert _search(tmp_path / "other", strategy, 4, rounds=8, archs=3) != rewards
    # a search cut short after round 4's second evaluation, then run again
    cut = tmp_path / "cut"
    shutil.copytree(whole, cut)
    for name in OUTPUTS:
        (cut / name).unlink()
    (cut / "controller" / "final.pt").unlink()
    for round_index in range(4, 8):
        (cut / "controller" / f"round_{round_index:05d}.pt").unlink()
        for path in (cut / "rounds" / f"r{round_index:05d}").glob("*.json"):
            if round_index > 4 or path.name in ("e0002.json",):
                path.unlink()
    assert _search(cut, strategy, 3, rounds=8, archs=3) == rewards
    for name in OUTPUTS:
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name


def test_search_config_reads_the_strategy_from_params():
    from config_values import quickstart_section

    section = {**quickstart_section("search"), "strategy": "evolution"}
    config = SearchConfig.from_params(section, 0)
    assert config.strategy == "evolution" and config.evolution.population >= 2
    assert config.result_fields()["evolution"] == config.evolution.__dict__
    with pytest.raises(ConfigError, match="search.strategy"):
        SearchConfig.from_params({**section, "strategy": "annealing"}, 0)
