"""Provenance blocks: git state, package versions, and their absence from result digests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from segnas.pipeline.digests import canonical_digest
from segnas.provenance import (
    KEY,
    describe_device,
    differing_packages,
    git_state,
    package_versions,
    provenance,
)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    for name in ("code.py", "dvc.lock"):
        (tmp_path / name).write_text("one\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return tmp_path


def test_git_state_names_the_commit_and_sees_edits_to_tracked_code(checkout):
    head = git(checkout, "rev-parse", "HEAD")
    assert git_state(checkout) == {"commit": head, "dirty": False}
    (checkout / "untracked.txt").write_text("new\n")
    (checkout / "dvc.lock").write_text("rewritten by dvc repro\n")
    assert git_state(checkout)["dirty"] is False  # untracked files and engine state aside
    (checkout / "pkg").mkdir()
    assert git_state(checkout / "pkg")["dirty"] is False  # a subfolder sees the whole checkout
    (checkout / "code.py").write_text("two\n")
    assert git_state(checkout) == git_state(checkout / "pkg") == {"commit": head, "dirty": True}


def test_git_state_outside_a_checkout_is_unknown(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}


def test_package_versions_mark_missing_packages():
    versions = package_versions(("torch", "segnas-no-such-package"))
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert versions["segnas-no-such-package"] is None


def test_provenance_block_holds_code_packages_and_device(checkout):
    block = provenance(torch.device("cpu"), threads=3, root=checkout)
    assert set(block) == {"git", "python", "packages", "device", "threads"}
    assert block["threads"] == 3
    assert block["git"]["commit"] == git(checkout, "rev-parse", "HEAD")
    assert {"torch", "torchvision", "numpy", "onnxruntime", "dvc", "snakemake"} <= set(
        block["packages"]
    )
    assert block["device"].startswith("cpu: ")


def test_differing_packages_lists_each_changed_version():
    old = {"packages": {"torch": "2.14.1", "numpy": "2.4.6", "dvc": "3.0"}}
    new = {"packages": {"torch": "2.14.1", "numpy": "2.5.0", "onnxruntime": "1.0"}}
    assert differing_packages(old, new) == [
        "dvc 3.0 -> None",
        "numpy 2.4.6 -> 2.5.0",
        "onnxruntime None -> 1.0",
    ]


def test_result_digests_leave_the_provenance_out(tmp_path):
    a, b, c = (tmp_path / f"{n}.json" for n in "abc")
    a.write_text(json.dumps({"miou": 0.5, KEY: {"git": {"commit": "1"}, "threads": 1}}))
    b.write_text(json.dumps({"miou": 0.5, KEY: {"git": {"commit": "2"}, "threads": 2}}))
    c.write_text(json.dumps({"miou": 0.6, KEY: {"git": {"commit": "1"}, "threads": 1}}))
    assert canonical_digest(a) == canonical_digest(b) != canonical_digest(c)


def test_a_configured_gpu_this_process_cannot_see_is_named_as_configured(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert (
        describe_device("cuda:1")
        == "cuda:1 (as configured; not visible to the process that wrote this)"
    )
    assert describe_device("cpu").startswith("cpu: ") and "threads" not in describe_device("cpu")


def test_search_metrics_carry_the_provenance_of_the_evaluations(tmp_path):
    from config_values import eval_setup, search_config

    from segnas.search.config import params_hash_of
    from segnas.search.layout import SearchLayout
    from segnas.search.runner import run_search
    from segnas.trial.spec import TrialSpec

    config = search_config(objective="target", target="arch0", rounds=1, archs_per_round=2)
    spec = TrialSpec("target", eval_setup(threads=1), "arch0")
    layout = SearchLayout(tmp_path / "search")
    run_search(layout, config, params_hash_of(config), spec)
    block = json.loads((layout.root / "metrics.json").read_text())[KEY]
    repo = Path(__file__).resolve().parents[1]
    assert block["threads"] == 1 and block["git"] == git_state(repo)  # the code that ran
    assert set(block["packages"]) >= {"torch", "dvc", "snakemake"}
