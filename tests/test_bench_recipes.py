"""The recipe benchmark's table: costs, the windowed reference and the cost/fidelity front."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_recipes import frontier, recipes_from  # noqa: E402

# Per architecture: phase-1 epoch-1 reward, then phase-2 epochs 1, 2 and 3 rewards.
REWARDS = [
    (0.10, 0.05, 0.20, 0.40),  # reference (mean of phase-2 epochs 2-3): 0.30
    (0.20, 0.06, 0.50, 0.30),  # 0.40
    (0.30, 0.07, 0.60, 0.20),  # 0.40 (ties with the second)
    (0.40, 0.08, 0.90, 0.10),  # 0.50
]


def record(rewards: tuple[float, ...]) -> dict:
    stops = [(1, 1), (2, 1), (2, 2), (2, 3)]
    checkpoints = [
        {
            "phase": phase,
            "epoch": epoch,
            "train_cpu_s": 10.0 * (i + 1),
            "val": {"full": {"cpu_s": 2.0, "reward": reward}},
        }
        for i, ((phase, epoch), reward) in enumerate(zip(stops, rewards, strict=True))
    ]
    return {
        "trajectories": {
            "full": {"cache": 100, "phase1": 1, "build_cpu_s": 1.0, "checkpoints": checkpoints}
        }
    }


def test_rows_carry_cost_and_rho_against_the_windowed_and_the_last_reference():
    rows = recipes_from([record(r) for r in REWARDS], ("full", 2, 3), window=2)
    assert [row["cpu_s_per_arch"] for row in rows] == [13.0, 23.0, 33.0, 43.0]  # 1 + train + 2
    assert [row["archs_per_hour_2_cores"] for row in rows][0] == pytest.approx(7200 / 13)
    phase1 = rows[0]
    assert (phase1["phase1_epochs"], phase1["phase2_epochs"]) == (1, 0)
    assert phase1["mean_reward"] == pytest.approx(0.25)
    # ranks 1, 2, 3, 4 against the reference ranks 1, 2.5, 2.5, 4: rho = 4.5 / sqrt(5 * 4.5)
    assert phase1["rho"]["value"] == pytest.approx(4.5 / (5 * 4.5) ** 0.5)
    assert phase1["rho_last"]["value"] == pytest.approx(-1.0)  # the last epoch alone reverses
    assert [row["in_reference"] for row in rows] == [False, False, True, True]
    assert rows[-1]["rho_last"]["value"] == pytest.approx(1.0)


def test_frontier_keeps_rows_that_beat_every_cheaper_one():
    rows = [{"rho": {"value": v}} for v in (0.2, float("nan"), 0.1, 0.5, 0.5, 0.9)]
    assert [row["rho"]["value"] for row in frontier(rows)] == [0.2, 0.5, 0.9]


def test_only_trajectories_every_architecture_has_make_rows():
    records = [record(r) for r in REWARDS]
    records[0]["trajectories"]["c50"] = records[0]["trajectories"]["full"]  # a partial rerun
    rows = recipes_from(records, ("full", 2, 3), window=2)
    assert len(rows) == 4 and all(row["recipe"].startswith("full:") for row in rows)
