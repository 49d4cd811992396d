"""The PPO benchmark: deterministic per seed, and a controller that learns moves (one that
does not, does not)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_ppo import markdown, run, uniform_rewards  # noqa: E402


def test_a_run_repeats_and_only_a_learning_controller_moves():
    frozen = run(0.0, 0.0, 0.0, seed=0, rounds=3, batch=2, tail=1)
    assert frozen == run(0.0, 0.0, 0.0, seed=0, rounds=3, batch=2, tail=1)
    learning = run(0.05, 0.0, 0.0, seed=0, rounds=3, batch=2, tail=1)
    assert learning["final_entropy"] < frozen["final_entropy"]
    assert learning["first_round_mean_reward"] == frozen["first_round_mean_reward"]


def test_uniform_rewards_are_shares_and_the_table_has_a_row_per_setting():
    rewards = uniform_rewards(20, seed=0)
    assert rewards == uniform_rewards(20, seed=0) and all(0 <= r <= 1 for r in rewards)
    header = {"rounds": 3, "batch": 2, "seeds": 1, "tail_rounds": 1}
    header |= {"uniform_mean_reward": 0.3, "uniform_spread": 0.1}
    row = {"lr": 0.01, "entropy_weight": 0.0, "noise": 1.0, "tail_mean_reward": 0.4}
    row |= {"tail_sd_over_seeds": 0.0, "gain_over_uniform_in_spreads": 1.0, "final_entropy": 50.0}
    table = markdown([row], header)
    assert "| 0.01 | 0 | 1 | 0.400 (0.000) | +1.00 | 50.00 |" in table
