"""scripts/collect_run.py: stage wall clocks from a stamped log, findings, the copied outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from collect_run import collect, findings, rejudge, stage_walls  # noqa: E402

LOG = [
    "100 START 100 abc123",
    "101 params.yaml now holds configuration 'camvid-cpu'",
    "103 Running stage 'prepare':",
    "110 [prepare camvid] 1/701",
    "130 Running stage 'search':",
    "1130 Running stage 'report':",
    "1190 EXIT 0 1191",
]


RISING = [0.20, 0.22, 0.21, 0.25, 0.26, 0.24, 0.30, 0.31, 0.29, 0.33, 0.32, 0.34]
FLAT = [0.30, 0.20, 0.40, 0.25, 0.35, 0.30, 0.28, 0.32, 0.30, 0.22, 0.38, 0.31]


def summary(rho: tuple[float, float], arch0: float, top0: float, params: int) -> dict:
    return {
        "search": {"mean_reward_first_quarter": 0.2, "mean_reward_last_quarter": 0.3},
        "compare": {
            "spearman_rho": {"controller": rho[0], "random": rho[1]},
            # controller: interval above 0; random: direction only
            "spearman_rho_ci": {"controller": [0.1, 0.9], "random": [-0.2, 0.9]},
            "mean_reward": {"controller": 0.31, "random": 0.29},
            "mann_whitney_p": 0.04,
            "mean_difference": {"value": 0.02, "low": 0.005, "high": 0.04},
            "long_setup": {
                "mann_whitney_p": 0.4,
                "mean_difference": {"value": -0.01, "low": -0.03, "high": 0.01},
            },
        },
        "train": {
            "arch0": {"test_miou": arch0, "params": 274443},
            "top0": {"test_miou": top0, "params": params},
        },
        "wall_clock_s": 7300,
    }


def test_stage_walls_run_from_each_start_to_the_next_and_the_last_to_exit():
    commit, walls, total = stage_walls(LOG)
    assert commit == "abc123"
    assert walls == {"prepare": 27, "search": 1000, "report": 61}
    assert total == 1091


def test_an_unfinished_or_failed_run_is_refused():
    with pytest.raises(ValueError, match="no START or no EXIT"):
        stage_walls(LOG[:-1])
    with pytest.raises(ValueError, match="exited with status 2"):
        stage_walls([*LOG[:-1], "1190 EXIT 2 1191"])


def test_findings_are_met_only_where_the_test_supports_them():
    judged = findings(summary((0.7, 0.6), 0.40, 0.395, 290_000), 300_000, 7200, RISING)
    verdicts = {name: finding["verdict"] for name, finding in judged.items()}
    assert verdicts == {
        "search_last_quarter_above_first": "met",  # 0.113 higher, interval above 0
        "controller_above_random_search_setup": "met",  # interval [0.005, 0.04]
        "controller_above_random_long_setup": "not met",  # -0.01: not even the direction
        "rank_fidelity_controller": "met",  # interval [0.1, 0.9]
        "rank_fidelity_random": "not established",  # 0.6 but [-0.2, 0.9]
        "top0_within_1_point_of_arch0_at_most_max_params": "not established",  # one seed each
        "pipeline_within_budget": "not met",  # 7300 s > 7200 s
    }
    assert judged["search_last_quarter_above_first"]["ci"][0] > 0
    flat = findings(summary((0.7, 0.6), 0.40, 0.38, 290_000), 300_000, 7200, FLAT)
    assert flat["search_last_quarter_above_first"]["verdict"] != "met"
    assert flat["top0_within_1_point_of_arch0_at_most_max_params"]["verdict"] == "not met"
    too_big = findings(summary((0.7, 0.7), 0.40, 0.45, 310_000), 300_000, 7200, RISING)
    assert too_big["top0_within_1_point_of_arch0_at_most_max_params"]["verdict"] == "not met"


def _archs_csv(path: Path, rewards: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"{i // 4},{i % 4},{r}" for i, r in enumerate(rewards)]
    path.write_text("round,index,reward\n" + "\n".join(rows) + "\n")


def test_collect_copies_small_outputs_only_and_writes_the_summary(tmp_path):
    run = tmp_path / "run"
    (run / "report" / "figures").mkdir(parents=True)
    (run / "models" / "arch0").mkdir(parents=True)
    report = summary((0.7, 0.6), 0.40, 0.395, 290_000)
    del report["wall_clock_s"]
    (run / "report" / "summary.json").write_text(json.dumps(report))
    (run / "report" / "figures" / "fig5.png").write_bytes(b"png")
    (run / "models" / "arch0" / "train.json").write_text("{}")
    (run / "models" / "arch0" / "best.pt").write_bytes(b"weights")
    _archs_csv(run / "search" / "archs.csv", RISING)
    log = tmp_path / "run.log"
    log.write_text("\n".join(LOG) + "\n")
    out = tmp_path / "out"
    written = collect(run, log, out, 300_000, 7200)
    assert written["wall_clock_s"] == 1091 and written["commit"] == "abc123"
    assert written["findings"]["pipeline_within_budget"]["verdict"] == "met"
    assert json.loads((out / "summary.json").read_text()) == written
    copied = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert copied == [
        "findings.md",
        "models/arch0/train.json",
        "report/figures/fig5.png",
        "run.log",
        "search/archs.csv",
        "summary.json",
    ]
    table = (out / "findings.md").read_text().splitlines()
    assert len(table) == 2 + len(written["findings"])
    assert table[-1].startswith("| pipeline_within_budget |") and "wall_clock_s 1091" in table[-1]
    assert table[-1].endswith("| **met** |")
    assert rejudge(out, 300_000, 1000)["findings"]["pipeline_within_budget"]["verdict"] == "not met"
    assert (out / "findings.md").read_text().splitlines()[-1].endswith("| **not met** |")
