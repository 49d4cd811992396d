"""The reward audit: its plan, and ``segnas reward-audit`` on a tiny project (the whole audit,
a stale audit refused, a kill -9 resumed to the same results)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from search_project import make_project, stage_env, tiny_params, write_params

from segnas.audit.data import AuditData
from segnas.audit.plan import BAND, UNIFORM, plan_architectures, read_band
from segnas.device import resolve_device
from segnas.errors import ConfigError
from segnas.io import read_json
from segnas.space import DEFAULT_SPACE

AUDIT = [sys.executable, "-m", "segnas.cli", "reward-audit"]
TINY = ["--per-group", "2", "--reward-seeds", "2", "--final-repeats", "1", "--band", "band.txt"]
REQUIRED = (
    "recipe",
    "repeatability.icc.controller_band",
    "repeatability.icc.uniform",
    "repeatability.seed_sd",
    "repeatability.between_sd",
    "fidelity.num_heldout",
    "fidelity.spearman_rho",
    "fidelity.ci_low",
    "fidelity.ci_high",
    "fidelity.baselines.flops",
    "fidelity.baselines.params",
    "fidelity.baselines.jacov",
    "fidelity.baselines.synflow",
    "fidelity.baselines.snip",
    "cost.core_s_mean",
    "detectable_difference.n10",
    "detectable_difference.n20",
    "detectable_difference.n40",
)


def _band(count: int, seed: int = 7) -> list:
    return [DEFAULT_SPACE.sample(seed * 1000 + i) for i in range(count)]


def test_band_files_of_each_kind_give_the_same_distinct_genotypes(tmp_path):
    genotypes = _band(3)
    texts = [g.to_text() for g in genotypes]
    (tmp_path / "band.txt").write_text("# a comment\n" + "\n".join(texts + texts[:1]) + "\n")
    (tmp_path / "archs.csv").write_text(
        "round,genotype\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(texts))
    )
    records = [{"genotype": t} for t in texts]
    (tmp_path / "samples.json").write_text(json.dumps({"samples": {"controller": records}}))
    for name in ("band.txt", "archs.csv", "samples.json"):
        assert [g.hash for g in read_band(tmp_path / name)] == [g.hash for g in genotypes]
    (tmp_path / "bad.txt").write_text("T:nonsense\n")
    with pytest.raises(ConfigError, match="bad.txt: cannot read its genotypes"):
        read_band(tmp_path / "bad.txt")
    with pytest.raises(ConfigError, match="missing.txt does not exist"):
        read_band(tmp_path / "missing.txt")


def test_heldout_and_selection_architectures_never_overlap():
    band = _band(8)
    heldout = plan_architectures(3, 0, "heldout", band)
    selection = plan_architectures(3, 0, "selection", band)
    assert [a.group for a in heldout] == [UNIFORM] * 3 + [BAND] * 3
    assert not {a.genotype.hash for a in heldout} & {a.genotype.hash for a in selection}
    assert plan_architectures(3, 0, "heldout", band) == heldout  # seeded
    with pytest.raises(ConfigError, match="lists 8 distinct .* needs 10"):
        plan_architectures(5, 0, "selection", band)
    with pytest.raises(ConfigError, match="--per-group must be at least 2"):
        plan_architectures(1, 0, "heldout", band)


def _params() -> dict:
    params = tiny_params()
    params["train"].update({"epochs": 2, "val_every": 1, "checkpoint_every": 1})
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny project with a band list and one whole audit (two workers)."""
    root = make_project(tmp_path_factory.mktemp("audit") / "project", _params())
    (root / "band.txt").write_text("\n".join(g.to_text() for g in _band(5)) + "\n")
    done = subprocess.run(
        [*AUDIT, *TINY, "--out", "reference", "--workers", "2"],
        cwd=root,
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return root


def _lookup(summary: dict, dotted: str) -> object:
    value = summary
    for key in dotted.split("."):
        value = value[key]
    return value


@pytest.mark.slow
def test_a_whole_audit_writes_every_finding(project):
    summary = read_json(project / "reference" / "summary.json")
    for key in REQUIRED:
        _lookup(summary, key)  # present (None where undefined)
    assert summary["complete"] is True
    assert summary["progress"] == {"rewards": "8/8", "finals": "5/5"}
    assert summary["fidelity"]["num_heldout"] == 4
    assert summary["repeatability"]["num_complete"] == 4
    assert summary["cost"]["core_s_mean"] > 0
    assert summary["fidelity"]["final_noise"]["repeated"] == 1
    assert summary["recipe"]["phase1_epochs"] == 1
    assert (project / "reference" / "figure.png").stat().st_size > 1000
    assert "ICC(1) uniform" in (project / "reference" / "table.md").read_text()
    # the large working files stay out of git
    assert (project / "reference" / "work" / ".gitignore").read_text() == "*\n"


@pytest.mark.slow
def test_the_final_trainings_device_setting_is_resolved(project, monkeypatch):
    # `device: auto` (the paper's configurations) names a torch device for the final training
    monkeypatch.chdir(project)
    data = AuditData.from_params({**_params(), "device": "auto"}, "params.yaml")
    assert data.device == str(resolve_device("auto"))
    assert torch.device(data.device).type in ("cpu", "cuda")


@pytest.mark.slow
def test_an_audit_of_other_params_is_refused_naming_what_differs(project, tmp_path):
    work = tmp_path / "other"
    shutil.copytree(project / "reference", work, ignore=shutil.ignore_patterns("work"))
    params = _params()
    params["search"]["eval"]["lr_decoder_phase1"] = 0.05
    write_params(tmp_path, params)
    refused = subprocess.run(
        [*AUDIT, *TINY, "--params", str(tmp_path / "params.yaml"), "--out", str(work)],
        cwd=project,
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2
    assert "holds another audit (differs in: recipe, reward_stamp)" in refused.stderr


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_results(project):
    shutil.rmtree(project / "killed", ignore_errors=True)
    command = [*AUDIT, *TINY, "--out", "killed", "--workers", "2", "--no-final"]
    proc = subprocess.Popen(
        command,
        cwd=project,
        env=stage_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rewards = project / "killed" / "jobs" / "reward"
    deadline = time.monotonic() + 300
    try:
        while not list(rewards.glob("*.json")) and time.monotonic() < deadline:
            assert proc.poll() is None, "the audit ended before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = {path: path.stat().st_mtime_ns for path in rewards.glob("*.json")}
    assert 1 <= len(finished) < 8
    resumed = subprocess.run(
        command, cwd=project, env=stage_env(), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())
    reference = project / "reference" / "jobs" / "reward"
    for path in sorted(reference.glob("*.json")):
        expected, found = read_json(path), read_json(rewards / path.name)
        for payload in (expected, found):
            payload["result"].pop("seconds")
            payload["result"].pop("latency_ms")
        assert found == expected, path.name
