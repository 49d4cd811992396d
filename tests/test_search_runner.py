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
from search_project import (
    REPO,
    chdir,
    make_project,
    run_stage,
    stage_env,
    tiny_params,
    write_params,
)

from segnas.errors import ArtifactError
from segnas.io import read_json
from segnas.search.config import params_hash_of
from segnas.search.controller import load_controller
from segnas.search.directory import prepare_directory
from segnas.search.identity import check_search_matches
from segnas.search.layout import SearchLayout
from segnas.search.log import ARCHS_COLUMNS, CONTROLLER_COLUMNS
from segnas.search.runner import run_search
from segnas.search.steps import (
    run_trial_index,
    sample_round,
    update_round,
)
from segnas.space import DEFAULT_SPACE
from segnas.trial.spec import TrialSpec

OUTPUTS = ("archs.csv", "controller.csv", "top.json", "metrics.json")
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
    rounds = (ref / "controller.csv").read_text().splitlines()
    assert rounds[0] == ",".join(CONTROLLER_COLUMNS) and len(rounds) == 1 + 3
    assert all(float(row.split(",")[3]) > 0 for row in rounds[1:])  # the entropy
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
def test_snakemake_killed_mid_search_resumes_to_the_clean_result(project):
    """The fan-out (one Snakemake job per step) ends equal to the local pool, even when killed:
    kill -9 of Snakemake's whole process group mid-search, then ``--unlock`` and a rerun with
    ``--rerun-incomplete`` (the profiles' setting). Jobs Snakemake had not yet recorded as
    finished are redone, so only the final outputs are compared."""
    _fresh(project)
    (project / "Snakefile").write_text(SNAKEFILE)
    command = ["snakemake", "search", "--cores", "2", "--quiet", "all", "--rerun-incomplete"]
    proc = subprocess.Popen(
        command,
        cwd=project,
        env=stage_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rounds = project / "search" / "rounds"
    deadline = time.monotonic() + 300
    try:
        while not list(rounds.glob("*/e*.json")) and time.monotonic() < deadline:
            assert proc.poll() is None, "Snakemake ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (project / "search" / "archs.csv").exists()
    for step in (["snakemake", "--unlock", "--cores", "1", "--quiet", "all"], command):
        result = subprocess.run(
            step, cwd=project, env=stage_env(), capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert len(list((project / "logs" / "search").glob("r*_e*.log"))) == 6  # one job each
    _same_outputs(project)
    assert _search_digests(project / "search") == _search_digests(project / "reference")


@pytest.mark.slow
def test_slurm_fan_out_equals_the_local_pool(slurm_cluster, tmp_path):
    root = make_project(tmp_path / "project", tiny_params(rounds=1))
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
    # 1 sample, 2 evaluation, 1 update and 1 assembly job, each through sbatch
    assert output.count("SLURM jobid") == 5, output[-3000:]
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
    spec = TrialSpec("target", eval_setup(), "arch0")
    stream = io.StringIO()
    records = run_search(layout, config, params_hash_of(config), spec, stream)
    assert [(r.round, r.index) for r in records] == [(r, i) for r in range(4) for i in range(3)]
    assert "[search] 12/12" in stream.getvalue() and "best reward" in stream.getvalue()
    first = (layout.root / "archs.csv").read_bytes()
    other = _target_config(seed=1)
    run_search(layout, other, params_hash_of(other), spec, stream)
    assert "moved it to" in stream.getvalue()
    assert (layout.root / "archs.csv").read_bytes() != first
    with pytest.raises(ArtifactError, match="params hash"):
        run_trial_index(layout, config, params_hash_of(config), 0, 0, lambda g, s: None)
    with pytest.raises(ArtifactError, match="params hash"):
        sample_round(layout, config, params_hash_of(config), 0)


def test_local_run_continues_a_search_made_by_the_fan_out_steps(tmp_path):
    config = _target_config(rounds=2)
    params_hash = params_hash_of(config)
    spec = TrialSpec("target", eval_setup(), "arch0")
    layout = SearchLayout(tmp_path / "search")
    sample_round(layout, config, params_hash, 0)
    evaluate = spec.build()
    for index in range(config.archs_per_round):
        run_trial_index(layout, config, params_hash, 0, index, evaluate)
    update_round(layout, config, params_hash, 0)
    first_round = layout.checkpoint(0).stat().st_mtime_ns
    run_search(layout, config, params_hash, spec, io.StringIO())
    assert layout.checkpoint(0).stat().st_mtime_ns == first_round  # kept, not redone
    reference = SearchLayout(tmp_path / "reference")
    run_search(reference, config, params_hash, spec, io.StringIO())
    assert (layout.root / "archs.csv").read_bytes() == (reference.root / "archs.csv").read_bytes()


def _search_digests(root: Path) -> dict[str, str]:
    from segnas.pipeline.digests import canonical_digest

    return {
        p.relative_to(root).as_posix(): canonical_digest(p)
        for sub in ("rounds", "controller")
        for p in sorted((root / sub).rglob("*"))
        if p.is_file()
    }


def test_more_rounds_continue_the_search_and_keep_every_finished_evaluation(tmp_path):
    spec = TrialSpec("target", eval_setup(), "arch0")
    layout = SearchLayout(tmp_path / "search")
    short = _target_config(rounds=2)
    run_search(layout, short, params_hash_of(short), spec, io.StringIO())
    kept = read_json(layout.evaluation(1, 2))["result"]
    longer = _target_config(rounds=4)
    stream = io.StringIO()
    calls = []

    def counting(genotype, seed):
        calls.append(seed)
        return spec.build()(genotype, seed)

    class Counting(TrialSpec):
        def build(self):
            return counting

    counted = Counting("target", eval_setup(), "arch0")
    run_search(layout, longer, params_hash_of(longer), counted, stream)
    assert "continuing" in stream.getvalue() and "search.rounds 2 -> 4" in stream.getvalue()
    assert len(calls) == 2 * longer.archs_per_round  # only the two new rounds were evaluated
    assert read_json(layout.evaluation(1, 2))["result"] == kept
    clean = SearchLayout(tmp_path / "clean")
    run_search(clean, longer, params_hash_of(longer), spec, io.StringIO())
    assert _search_digests(layout.root) == _search_digests(clean.root)
    for name in ("archs.csv", "top.json"):
        assert (layout.root / name).read_bytes() == (clean.root / name).read_bytes()
    assert not list(layout.root.glob(".previous-*"))


def test_params_that_change_results_move_the_old_search_aside(tmp_path):
    spec = TrialSpec("target", eval_setup(), "arch0")
    layout = SearchLayout(tmp_path / "search")
    config = _target_config()
    old_hash = params_hash_of(config)
    run_search(layout, config, old_hash, spec, io.StringIO())
    old_archs = (layout.root / "archs.csv").read_bytes()
    other = _target_config(seed=1)
    stream = io.StringIO()
    prepare_directory(layout, params_hash_of(other), {"search": other.result_fields()}, stream)
    aside = layout.root / f".previous-{old_hash}"
    assert "search.seed 0 -> 1" in stream.getvalue() and str(aside) in stream.getvalue()
    assert (aside / "archs.csv").read_bytes() == old_archs
    assert (aside / "rounds").is_dir() and (aside / "controller" / "final.pt").is_file()
    for path in (layout.rounds_dir, layout.controller_dir, *layout.assembled):
        assert not path.exists(), path
    run_search(layout, other, params_hash_of(other), spec, io.StringIO())
    run_search(layout, config, old_hash, spec, io.StringIO())  # back: the new one moves aside
    assert (layout.root / "archs.csv").read_bytes() == old_archs
    assert len(list(layout.root.glob(".previous-*"))) == 2


def test_fan_out_steps_refuse_a_round_or_index_beyond_the_configured_search(tmp_path):
    from segnas.errors import ConfigError

    config = _target_config(rounds=2)
    layout = SearchLayout(tmp_path / "search")
    params_hash = params_hash_of(config)
    with pytest.raises(ConfigError, match=r"round 99 .*search\.rounds is 2"):
        run_trial_index(layout, config, params_hash, 99, 0, lambda g, s: None)
    with pytest.raises(ConfigError, match=r"round 2 .*search\.rounds is 2"):
        sample_round(layout, config, params_hash, 2)
    with pytest.raises(ConfigError, match=r"round -1"):
        update_round(layout, config, params_hash, -1)
    with pytest.raises(ConfigError, match=r"index 7 .*search\.archs_per_round is 3"):
        run_trial_index(layout, config, params_hash, 0, 7, lambda g, s: None)
    assert not layout.root.exists()


def test_a_second_search_in_the_same_directory_is_refused_naming_the_first(tmp_path):
    from segnas.search.lock import DirectoryBusy, directory_lock

    config = _target_config(rounds=1)
    layout = SearchLayout(tmp_path / "search")
    spec = TrialSpec("target", eval_setup(), "arch0")
    busy = pytest.raises(DirectoryBusy, match=rf"pid {os.getpid()} .*first-hash")
    with directory_lock(layout.root, "first-hash"), busy:
        run_search(layout, config, params_hash_of(config), spec, io.StringIO())
    assert not layout.rounds_dir.exists()
    run_search(layout, config, params_hash_of(config), spec, io.StringIO())  # released


def test_fan_out_steps_and_a_local_run_exclude_each_other(tmp_path, capsys):
    from segnas.search.lock import DirectoryBusy, directory_lock

    write_params(tmp_path, tiny_params(objective="target", target="arch0"))
    with directory_lock(tmp_path / "search", "local-hash"):
        assert run_stage(tmp_path, "search", "sample", "--round", "0") == 2
    err = capsys.readouterr().err
    assert f"pid {os.getpid()}" in err and "local-hash" in err
    assert not (tmp_path / "search" / "rounds").exists()
    layout = SearchLayout(tmp_path / "search")
    config = _target_config(rounds=1)
    with (
        directory_lock(layout.root, "", shared=True),
        pytest.raises(DirectoryBusy, match="fan-out"),
    ):
        run_search(layout, config, params_hash_of(config), TrialSpec("target", eval_setup()))
    assert run_stage(tmp_path, "search", "sample", "--round", "0") == 0


def test_train_refuses_a_search_of_other_params_naming_the_keys(tmp_path, capsys):
    params = tiny_params(rounds=1, objective="target")
    root = make_project(tmp_path / "p", params)
    assert run_stage(root, "search") == 0
    with chdir(root):
        check_search_matches(Path("search"), params, "params.yaml", "train")  # same params
    params["search"]["seed"] = 7
    params["train"].update(top_k=1, architectures=[], epochs=1)
    write_params(root, params)
    capsys.readouterr()
    assert run_stage(root, "train") == 2
    err = capsys.readouterr().err
    assert "search.seed 0 -> 7" in err and "rerun the search stage" in err
    assert not (root / "models").exists()


def test_more_rounds_of_a_trained_search_continue_it_through_the_stage(tmp_path, capsys):
    """Issue 29, item 3: the identity read back from state.json (lists) equals today's
    (tuples in the config), so raising search.rounds continues a search whose params hold
    lists (search.eval.crop_size, input_size), and train names only the keys that differ."""
    params = tiny_params(rounds=1)
    root = make_project(tmp_path / "p", params)
    assert run_stage(root, "search") == 0
    kept = root / "search" / "rounds" / "r00000" / "e0001.json"
    before = read_json(kept)["result"]
    params["search"]["rounds"] = 2
    write_params(root, params)
    capsys.readouterr()
    assert run_stage(root, "search") == 0
    err = capsys.readouterr().err
    assert "continuing the search" in err and "(search.rounds 1 -> 2)" in err, err
    assert not list((root / "search").glob(".previous-*"))
    assert read_json(kept)["result"] == before  # kept (re-stamped), not evaluated again
    assert "[search] 2/4" not in err  # the progress starts at the two kept evaluations
    params["search"]["seed"] = 7
    params["train"].update(top_k=1, architectures=[], epochs=1)
    write_params(root, params)
    assert run_stage(root, "train") == 2
    err = capsys.readouterr().err
    assert "(search.seed 0 -> 7)" in err, err
