"""scripts/collect_run.py: stage wall clocks from a stamped log, findings, the copied outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from collect_run import collect, findings, stage_walls  # noqa: E402

LOG = [
    "100 START 100 abc123",
    "101 params.yaml now holds configuration 'camvid-cpu'",
    "103 Running stage 'prepare':",
    "110 [prepare camvid] 1/701",
    "130 Running stage 'search':",
    "1130 Running stage 'report':",
    "1190 EXIT 0 1191",
]


def summary(rho: tuple[float, float], arch0: float, top0: float, params: int) -> dict:
    return {
        "search": {"mean_reward_first_quarter": 0.2, "mean_reward_last_quarter": 0.3},
        "compare": {
            "spearman_rho": {"controller": rho[0], "random": rho[1]},
            "mean_reward": {"controller": 0.31, "random": 0.29},
            "mann_whitney_p": 0.4,
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


def test_findings_judge_each_rule_on_its_measured_values():
    met = findings(summary((0.7, 0.6), 0.40, 0.395, 290_000), 300_000, 7200)
    assert met["rho_at_least_0.6_in_both_groups"]["met"]
    assert met["search_last_quarter_above_first"]["met"]
    assert met["controller_mean_above_random"]["met"]
    assert met["top0_within_1_point_of_arch0_at_most_max_params"]["met"]
    assert not met["pipeline_within_budget"]["met"]
    missed = findings(summary((0.7, 0.59), 0.40, 0.38, 290_000), 300_000, 7200)
    assert not missed["rho_at_least_0.6_in_both_groups"]["met"]
    assert not missed["top0_within_1_point_of_arch0_at_most_max_params"]["met"]
    too_big = findings(summary((0.7, 0.7), 0.40, 0.45, 310_000), 300_000, 7200)
    assert not too_big["top0_within_1_point_of_arch0_at_most_max_params"]["met"]


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
    log = tmp_path / "run.log"
    log.write_text("\n".join(LOG) + "\n")
    out = tmp_path / "out"
    written = collect(run, log, out, 300_000, 7200)
    assert written["wall_clock_s"] == 1091 and written["commit"] == "abc123"
    assert written["findings"]["pipeline_within_budget"]["met"]
    assert json.loads((out / "summary.json").read_text()) == written
    copied = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert copied == [
        "findings.md",
        "models/arch0/train.json",
        "report/figures/fig5.png",
        "run.log",
        "summary.json",
    ]
    table = (out / "findings.md").read_text().splitlines()
    assert len(table) == 2 + len(written["findings"])
    assert table[-1].startswith("| pipeline_within_budget |") and "wall_clock_s 1091" in table[-1]
    assert table[-1].endswith("| **met** |")
