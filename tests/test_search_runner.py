import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from config_values import eval_setup, search_config
from search_project import REPO, make_project, run_stage, stage_env, tiny_params

from segnas.errors import ArtifactError
from segnas.io import read_json
from segnas.search.config import params_hash_of
from segnas.search.controller import load_controller
from segnas.search.log import ARCHS_COLUMNS
from segnas.search.runner import run_search
from segnas.search.steps import (
    EvaluatorSpec,
    SearchLayout,
    evaluate_index,
    sample_round,
    update_round,
)
from segnas.space import DEFAULT_SPACE

OUTPUTS = ("archs.csv", "top.json", "metrics.json")
SNAKEFILE = """configfile: "params.yaml"
include: "workflow/rules/common.smk"
include: "workflow/rules/search.smk"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny project and its reference search (local, one worker, in-process)."""
    root = make_project(tmp_path_factory.mktemp("search") / "project", tiny_params(rounds=3))
    assert run_stage(root, "search") == 0
    shutil.copytree(root / "search", root / "reference")
    return root


def _same_outputs(root: Path) -> None:
    for name in OUTPUTS:
        expected = (root / "reference" / name).read_bytes()
        assert (root / "search" / name).read_bytes() == expected, name


def _fresh(root: Path) -> None:
    for name in ("search", ".snakemake", "logs"):
        shutil.rmtree(root / name, ignore_errors=True)


def test_local_search_writes_reproducible_logs(project):
    ref = project / "reference"
    lines = (ref / "archs.csv").read_text().splitlines()
    assert lines[0] == ",".join(ARCHS_COLUMNS) and len(lines) == 1 + 3 * 2
    assert "seconds" not in lines[0] and "latency" not in lines[0]
    assert "seconds_phase1" in (ref / "timings.csv").read_text().splitlines()[0]
    top = read_json(ref / "top.json")["top"]
    rewards = [entry["reward"] for entry in top]
    assert rewards == sorted(rewards, reverse=True) and len({e["hash"] for e in top}) == len(top)
    metrics = read_json(ref / "metrics.json")
    assert metrics["evaluated"] == 6 and metrics["best_reward"] == rewards[0] > 0
    params_hash = read_json(ref / "state.json")["params_hash"]
    controller = load_controller(ref / "controller" / "final.pt", DEFAULT_SPACE, params_hash)
    assert controller.hidden_size == 100


@pytest.mark.slow
def test_kill_9_then_resume_equals_the_uninterrupted_run(project):
    _fresh(project)
    command = [sys.executable, str(REPO / "stages" / "search.py"), "run", "--workers", "2"]
    proc = subprocess.Popen(
        command,
        cwd=project,
        env=stage_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rounds = project / "search" / "rounds"
    deadline = time.monotonic() + 240
    try:
        while not list(rounds.glob("*/e*.json")) and time.monotonic() < deadline:
            assert proc.poll() is None, "the search ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = {path: path.stat().st_mtime_ns for path in rounds.glob("*/e*.json")}
    assert 1 <= len(finished) < 6 and not (project / "search" / "archs.csv").exists()
    resumed = subprocess.run(
        command, cwd=project, env=stage_env(), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    # finished evaluations were kept, not redone
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())
    _same_outputs(project)


@pytest.mark.slow
def test_snakemake_fan_out_equals_the_local_pool(project):
    _fresh(project)
    (project / "Snakefile").write_text(SNAKEFILE)
    result = subprocess.run(
        ["snakemake", "search", "--cores", "2", "--quiet", "all"],
        cwd=project,
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list((project / "logs" / "search").glob("r*_e*.log"))) == 6  # one job each
    _same_outputs(project)


@pytest.mark.slow
def test_slurm_fan_out_equals_the_local_pool(slurm_cluster, tmp_path):
    root = make_project(tmp_path / "project", tiny_params(rounds=2))
    assert run_stage(root, "search") == 0
    shutil.copytree(root / "search", root / "reference")
    _fresh(root)
    (root / "Snakefile").write_text(SNAKEFILE)
    result = subprocess.run(
        ["snakemake", "search", "--profile", "workflow/profiles/slurm"],
        cwd=root,
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    # 2 sample, 4 evaluation, 2 update jobs and 1 assembly job, each through sbatch
    assert output.count("SLURM jobid") == 9, output[-3000:]
    _same_outputs(root)


def _target_config(**overrides):
    values = {
        "objective": "target",
        "target": "arch0",
        "rounds": 4,
        "archs_per_round": 3,
        "progress_interval": 0.0,
    }
    values.update(overrides)
    return search_config(**values)


def test_target_objective_progress_and_restart_on_changed_params(tmp_path):
    layout = SearchLayout(tmp_path / "search")
    config = _target_config()
    spec = EvaluatorSpec("target", eval_setup(), "arch0")
    stream = io.StringIO()
    records = run_search(layout, config, params_hash_of(config), spec, stream)
    assert [(r.round, r.index) for r in records] == [(r, i) for r in range(4) for i in range(3)]
    assert "[search] 12/12" in stream.getvalue() and "best reward" in stream.getvalue()
    first = (layout.root / "archs.csv").read_bytes()
    other = _target_config(seed=1)
    run_search(layout, other, params_hash_of(other), spec, stream)
    assert "starting over" in stream.getvalue()
    assert (layout.root / "archs.csv").read_bytes() != first
    with pytest.raises(ArtifactError, match="params hash"):
        evaluate_index(layout, config, params_hash_of(config), 0, 0, lambda g, s: None)
    with pytest.raises(ArtifactError, match="params hash"):
        sample_round(layout, config, params_hash_of(config), 0)


def test_local_run_continues_a_search_made_by_the_fan_out_steps(tmp_path):
    config = _target_config(rounds=2)
    params_hash = params_hash_of(config)
    spec = EvaluatorSpec("target", eval_setup(), "arch0")
    layout = SearchLayout(tmp_path / "search")
    sample_round(layout, config, params_hash, 0)
    evaluate = spec.build()
    for index in range(config.archs_per_round):
        evaluate_index(layout, config, params_hash, 0, index, evaluate)
    update_round(layout, config, params_hash, 0)
    first_round = layout.checkpoint(0).stat().st_mtime_ns
    run_search(layout, config, params_hash, spec, io.StringIO())
    assert layout.checkpoint(0).stat().st_mtime_ns == first_round  # kept, not redone
    reference = SearchLayout(tmp_path / "reference")
    run_search(reference, config, params_hash, spec, io.StringIO())
    assert (layout.root / "archs.csv").read_bytes() == (reference.root / "archs.csv").read_bytes()
