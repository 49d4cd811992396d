"""Both engines describe the same DAG, rerun exactly what a change affects, and reproduce.

The fast tests read ``dvc.yaml`` and Snakemake's own view of the workflow
(``--detailed-summary``, ``--lint``). The slow ones run the quickstart from scratch with each
engine in a temporary copy of the repository and then change one thing at a time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from segnas.pipeline.deps import expand_deps, stage_code_deps
from segnas.pipeline.digests import stage_hashes
from segnas.pipeline.dvcgen import dvc_stages, render_dvc_yaml
from segnas.pipeline.reference import copy_sources
from segnas.pipeline.ruleparams import (
    LONG_AGO,
    PARAMS_DIR,
    locked_params,
    made_path,
    params_file,
)
from segnas.pipeline.stages import PLOTS, REGISTRY, STAGES
from segnas.pipeline.stages import stage as registered

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRAIN_KEY = "train.epochs"
SEARCH_SEED_KEY = "search.seed"
SHORT_TRAIN = "train.epochs=5"


def _env() -> dict[str, str]:
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONHASHSEED="0")


def _run(args: list[str], cwd: Path, check: bool = True) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=_env(), capture_output=True, text=True, check=False, timeout=1800
    )
    output = done.stdout + done.stderr
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{output[-4000:]}")
    return output


def commit_all(workspace: Path, message: str) -> None:
    """``git add -A`` and commit (as the workspace's own user, see :func:`make_workspace`)."""
    _run(["git", "add", "-A"], workspace)
    _run(["git", "commit", "-qm", message], workspace)


def make_workspace(path: Path) -> Path:
    """A fresh copy of the pipeline's sources (no outputs), committed to its own git repository
    (like a clone: DVCLive needs a commit)."""
    path.mkdir(parents=True, exist_ok=True)
    copy_sources(REPO, path)
    _run(["git", "init", "-q"], path)
    # a user of its own: commits (ours and those of DVC experiments) need no global identity
    _run(["git", "config", "user.name", "segnas"], path)
    _run(["git", "config", "user.email", "ci@segnas.invalid"], path)
    commit_all(path, "sources")
    return path


def stage_of_rule(rule: str) -> str | None:
    """The pipeline stage a Snakemake rule belongs to (the search fans out into several)."""
    for stage in STAGES:
        if rule == stage or rule.startswith(f"{stage}_"):
            return stage
    return None


def dvc_repro(workspace: Path) -> list[str]:
    """Run ``dvc repro``; the stages it executed, in order."""
    return re.findall(r"Running stage '(\w+)'", _run(["dvc", "repro"], workspace))


def snakemake_run(workspace: Path, dry_run: bool = False) -> list[str]:
    """Run Snakemake with the local profile (or only plan, ``dry_run``); the stages whose rules
    executed (or would), in order."""
    args = ["snakemake", "--profile", "workflow/profiles/local"] + (
        ["--dry-run"] if dry_run else []
    )
    output = _run(args, workspace)
    rules = re.findall(r"^\s*(?:local)?rule (\w+):", output, flags=re.MULTILINE)
    stages = [stage_of_rule(rule) for rule in rules]
    return list(dict.fromkeys(s for s in stages if s))


def snakemake_plan(workspace: Path) -> list[str]:
    """The stages Snakemake would run now (its dry run is the exact plan a run executes)."""
    return snakemake_run(workspace, dry_run=True)


def set_param(workspace: Path, dotted: str, value) -> None:
    path = workspace / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    node = params
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    assert last in node, f"{dotted} is not in params.yaml"
    node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def get_param(workspace: Path, dotted: str):
    node = yaml.safe_load((workspace / "params.yaml").read_text(encoding="utf-8"))
    for key in dotted.split("."):
        node = node[key]
    return node


def _is_code(dep: str) -> bool:
    return dep.startswith(("segnas", "stages/")) and (dep.endswith(".py") or "." not in dep)


def _code_and_data_deps(stage: str) -> tuple[set[str], set[str]]:
    deps = [str(d) for d in dvc_stages(REPO)[stage]["deps"]]
    code = [d for d in deps if _is_code(d)]
    data = {d for d in deps if d not in code}
    return expand_deps(code, REPO), data


def _outs(spec: dict) -> set[str]:
    found = set()
    for kind in ("outs", "metrics", "plots"):
        for entry in spec.get(kind) or []:
            found.add(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    return found


# ---------------------------------------------------------------- static: the two DAGs


def test_dvc_has_the_eight_stages_in_order_with_their_commands():
    stages = dvc_stages(REPO)
    assert list(stages) == list(STAGES)
    for name, spec in stages.items():
        assert spec["cmd"] == f"python stages/{name}.py --params params.yaml"


def test_committed_dvc_yaml_is_the_generated_one():
    committed = (REPO / "dvc.yaml").read_text(encoding="utf-8")
    assert committed == render_dvc_yaml(REPO), "dvc.yaml is stale: run `segnas dvc-yaml`"


def test_dvc_params_are_the_sections_each_stage_reads():
    for name, spec in dvc_stages(REPO).items():
        sections = list(dict.fromkeys(str(p).split(".")[0] for p in spec["params"]))
        assert sections == list(registered(name).sections), name


def test_dvc_params_leave_out_only_how_a_stage_runs():
    """Worker counts and progress intervals do not change results, so they trigger no rerun."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    for name, spec in dvc_stages(REPO).items():
        listed = {str(p) for p in spec["params"]}
        for section in registered(name).sections:
            if section in listed:
                continue
            keys = {f"{section}.{key}" for key in params[section]}
            run_only = {k for k in registered(name).run_only if k.startswith(f"{section}.")}
            assert run_only and keys - listed == run_only, name


def test_docs_stage_table_lists_the_registered_sections():
    table = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\w+) \| ([^|]+) \|", table, flags=re.MULTILINE))
    for spec in REGISTRY:
        assert rows[spec.name].strip() == ", ".join(f"`{s}`" for s in spec.sections), spec.name


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_code_deps_are_exactly_the_imported_modules(stage):
    if not (REPO / "stages" / f"{stage}.py").is_file():
        pytest.fail(f"stages/{stage}.py is missing")
    code, _ = _code_and_data_deps(stage)
    expected = set(stage_code_deps(stage, REPO))
    assert code == expected, f"update dvc.yaml from `segnas repro-deps {stage}`"


def _stages_importing(module: str) -> set[str]:
    return {stage for stage in STAGES if module in _code_and_data_deps(stage)[0]}


def test_stem_cache_code_is_not_a_dependency_of_prepare_or_split():
    assert _stages_importing("segnas/data/stem_cache.py") == {"cache_stem", "search", "compare"}


def test_the_search_strategy_code_is_not_a_dependency_of_train_evaluate_or_report():
    # train reads the search's identity (its config dataclasses) but none of its strategies:
    # editing PPO, the controller, evolution or the rounds reruns search and compare only
    for module in (
        "segnas/search/ppo.py",
        "segnas/search/controller.py",
        "segnas/search/strategies.py",
        "segnas/search/steps.py",
    ):
        assert _stages_importing(module) <= {"search", "compare", "report"}, module
        assert not _stages_importing(module) & {"train", "evaluate"}, module


def test_training_loop_is_a_dependency_of_train_only():
    assert _stages_importing("segnas/final_training.py") == {"train"}
    assert _stages_importing("segnas/training_loop.py") == {"train"}


def test_comparison_code_is_a_dependency_of_compare_only():
    """report reads the comparison's stamp (segnas/compare/config.py), not its training code."""
    assert _stages_importing("segnas/compare/steps.py") == {"compare"}
    assert _stages_importing("segnas/compare/config.py") == {"compare", "report"}


def test_dvc_data_deps_are_upstream_outputs():
    stages = dvc_stages(REPO)
    produced: set[str] = set()
    for name, spec in stages.items():
        _, data = _code_and_data_deps(name)
        for dep in data:
            upstream = any(_under(dep, out) for out in produced)
            assert upstream or (REPO / dep).is_file(), (name, dep)
        produced |= _outs(spec)


def snakemake_jobs(workspace: Path) -> list[dict[str, object]]:
    """Every job of a forced dry run: rule, inputs, outputs and shell command."""
    text = _run(["snakemake", "--dry-run", "--forceall", "--printshellcmds"], workspace)
    jobs: list[dict[str, object]] = []
    for line in text.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            jobs.append({"rule": match[1], "input": set(), "output": set(), "shell": ""})
        elif jobs and (match := re.match(r"^    (input|output): (.*)$", line)):
            jobs[-1][match[1]] = {f.strip() for f in match[2].split(",")}
        elif jobs and line.startswith("Shell command: "):
            jobs[-1]["shell"] = line.removeprefix("Shell command: ")
    return jobs


def _under(path: str, out: str) -> bool:
    return path == out or path.startswith(f"{out}/")


def test_snakemake_declares_the_same_inputs_and_outputs_as_dvc(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    outputs: dict[str, set[str]] = {s: set() for s in STAGES}
    inputs: dict[str, set[str]] = {s: set() for s in STAGES}
    commands: dict[str, set[str]] = {s: set() for s in STAGES}
    for job in snakemake_jobs(workspace):
        stage = stage_of_rule(str(job["rule"]))
        if stage is None:
            continue
        outputs[stage] |= job["output"]
        inputs[stage] |= job["input"]
        commands[stage].add(str(job["shell"]))
    for name, spec in dvc_stages(REPO).items():
        code, data = _code_and_data_deps(name)
        # DVC's params are a file of the stage's params for Snakemake (every rule of it reads)
        params_file = f"{PARAMS_DIR.as_posix()}/{name}.json"
        assert params_file in inputs[name], (name, "rules without the stage's params file")
        inputs[name].discard(params_file)
        external_inputs = {f for f in inputs[name] if f not in outputs[name]}
        declared = _outs(spec)
        uncovered = {o for o in declared if not any(_under(f, o) for f in outputs[name])}
        assert not uncovered, (name, "DVC outputs no Snakemake rule writes", uncovered)
        stray = {f for f in outputs[name] if not any(_under(f, o) for o in declared)}
        assert not stray, (name, "Snakemake outputs outside the DVC outputs", stray)
        assert external_inputs == code | data, (name, external_inputs ^ (code | data))
        assert any(f"python stages/{name}.py --params params.yaml" in c for c in commands[name])


def test_snakemake_lint_is_clean(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    output = _run(["snakemake", "--lint"], workspace)
    assert "Congratulations, your workflow is in a good condition!" in output, output


def test_a_stage_params_file_changes_only_with_its_params_and_is_old_where_dvc_ran_them(
    tmp_path,
):
    """Issue 29, item 7, unit level: the file is rewritten only when the stage's params change
    (run-only keys left out); dated now, or long ago where dvc.lock holds exactly these params
    (DVC writes YAML 1.2: 1e-05 is a float)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    relative = params_file("train", params, tmp_path)
    path = tmp_path / relative
    assert relative == f"{PARAMS_DIR.as_posix()}/train.json"
    assert json.loads(path.read_text()) == registered("train").params(params)
    assert path.stat().st_mtime > LONG_AGO
    earlier = path.stat().st_mtime_ns - 100 * 10**9
    os.utime(path, ns=(earlier, earlier))
    params_file("train", params, tmp_path)  # unchanged: untouched
    assert path.stat().st_mtime_ns == earlier
    params["search"]["workers"] = 7  # a run-only key of search
    params_file("search", params, tmp_path)
    dated = (tmp_path / PARAMS_DIR / "search.json").stat().st_mtime_ns
    params["search"]["workers"] = 1
    params_file("search", params, tmp_path)
    assert (tmp_path / PARAMS_DIR / "search.json").stat().st_mtime_ns == dated
    train = dict(params["train"], epochs=3, weight_decay=1.0e-5)
    lock_params = {"seed": params["seed"], "device": params["device"], "stem": params["stem"]}
    lock_params |= {f"train.{key}": value for key, value in train.items()}
    search = registered("train").params(params)["search"]  # the search keys train reads
    lock_params |= {f"search.{key}": value for key, value in search.items()}
    lock = yaml.safe_dump({"stages": {"train": {"params": {"params.yaml": lock_params}}}})
    (tmp_path / "dvc.lock").write_text(lock.replace("1.0e-05", "1e-05"), encoding="utf-8")
    assert "weight_decay: 1e-05" in (tmp_path / "dvc.lock").read_text()
    assert locked_params(tmp_path)["train"]["train"] == train
    params["train"] = train
    params_file("train", params, tmp_path)
    assert path.stat().st_mtime == LONG_AGO
    params["train"] = dict(train, epochs=4)
    params_file("train", params, tmp_path)
    assert path.stat().st_mtime_ns > earlier
    # Snakemake then made the outputs (its record is newer than dvc.lock): epochs 4 is theirs
    shutil.copy(path, tmp_path / made_path("train"))
    params["train"] = train
    params_file("train", params, tmp_path)
    assert path.stat().st_mtime > LONG_AGO
    params["train"] = dict(train, epochs=4)
    params_file("train", params, tmp_path)
    assert path.stat().st_mtime == LONG_AGO


# ---------------------------------------------------------------- slow: real runs


@pytest.fixture(scope="module")
def dvc_clean(tmp_path_factory):
    """A clean ``dvc repro``: the workspace, the stages it ran, the output hashes and the search
    metrics (tests that use it change its params later)."""
    workspace = make_workspace(tmp_path_factory.mktemp("dvc") / "ws")
    ran = dvc_repro(workspace)
    search = json.loads((workspace / "search" / "metrics.json").read_text(encoding="utf-8"))
    return workspace, ran, stage_hashes(workspace), search


@pytest.fixture(scope="module")
def snakemake_clean(tmp_path_factory):
    workspace = make_workspace(tmp_path_factory.mktemp("smk") / "ws")
    ran = snakemake_run(workspace)
    return workspace, ran, stage_hashes(workspace)


@pytest.mark.slow
def test_clean_runs_execute_every_stage(dvc_clean, snakemake_clean):
    # compare and train both follow search; the engines may order them either way.
    for ran in (dvc_clean[1], snakemake_clean[1]):
        assert sorted(ran) == sorted(STAGES) and ran[:4] == list(STAGES[:4]), ran


@pytest.mark.slow
def test_two_clean_runs_give_identical_output_hashes(dvc_clean, snakemake_clean):
    """Two clean quickstart runs (one per engine) give the same bytes for every stage."""
    dvc_hashes, smk_hashes = dvc_clean[2], snakemake_clean[2]
    for stage in STAGES:
        differing = sorted(
            path
            for path in set(dvc_hashes[stage]["files"]) | set(smk_hashes[stage]["files"])
            if dvc_hashes[stage]["files"].get(path) != smk_hashes[stage]["files"].get(path)
        )
        assert not differing, f"{stage}: {differing[:10]}"


@pytest.mark.slow
def test_a_clean_dvc_run_matches_the_committed_reference_metrics(dvc_clean):
    """``segnas repro-check --existing`` on the clean run (before the tests below change its
    params): every metric within the committed reference's tolerance. CI's reference check."""
    output = _run(["segnas", "repro-check", "--existing", str(dvc_clean[0])], dvc_clean[0])
    assert re.search(r"repro-check: (\d+)/\1 metrics within", output), output


@pytest.mark.slow
def test_dvc_metrics_show_lists_miou_best_reward_and_rho(dvc_clean):
    """``dvc metrics show`` lists the headline numbers with no edit: each trained model's test
    mIoU, the search's best reward and each group's Spearman rho (``dvc exp show`` and
    ``dvc metrics diff`` compare the same)."""
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], dvc_clean[0]))
    metrics = shown[""]["data"]
    results = metrics["results/metrics.json"]["data"]
    models = [name for name in results if name != "provenance"]
    assert "arch0" in models and all(0 < results[m]["miou"] <= 1 for m in models)
    assert metrics["search/metrics.json"]["data"]["best_reward"] == dvc_clean[3]["best_reward"]
    compare = metrics["compare/metrics.json"]["data"]
    assert all("spearman_rho" in compare[group] for group in ("controller", "random"))


@pytest.mark.slow
def test_snakemake_report_holds_the_tagged_outputs_with_captions(snakemake_clean):
    """`snakemake --report` renders the workflow description and every tagged output: the
    report stage's figures, the search and compare tables, each model's per-class IoU."""
    workspace = snakemake_clean[0]
    html = workspace / "report" / "snakemake.html"
    try:
        _run(["snakemake", "--report", "report/snakemake.html"], workspace)
        text = html.read_text()
    finally:
        html.unlink(missing_ok=True)  # report/ is the report stage's output
    for category in ("Figures", "Search", "Controller vs random", "Trained models"):
        assert category in text
    figures = sorted(p.name for p in (workspace / "report" / "figures").glob("*.png"))
    assert figures and all(name in text for name in figures)
    for table in ("archs.csv", "controller.csv", "compare.csv", "per_class_iou.csv"):
        assert table in text
    search = yaml.safe_load((workspace / "params.yaml").read_text())["search"]
    assert f"The search evaluated {search['rounds'] * search['archs_per_round']}" in text
    assert "Per-class test IoU of the trained model" in text


@pytest.mark.slow
def test_snakemake_has_nothing_to_do_after_dvc_repro(dvc_clean):
    """No stage rewrites a file after a job downstream of it read it: the engines agree."""
    assert snakemake_plan(dvc_clean[0]) == []


@pytest.mark.slow
def test_snakemake_sees_a_params_edit_after_dvc_repro(tmp_path):
    """Issue 29, item 7: outputs DVC made have no Snakemake metadata, yet a params edit after
    ``dvc repro`` makes Snakemake schedule exactly the stages it affects (each stage's rules
    read a file of its params that changes only when they do); nothing when nothing changed,
    and a dry run changes nothing. On a tiny quickstart (tiny data, search, compare, training)."""
    from search_project import tiny_params, tiny_train, write_params

    workspace = make_workspace(tmp_path / "ws")
    params = tiny_train(tiny_params(rounds=1))
    params["compare"].update(num_archs=2, workers=1, long_phase2_epochs=1)
    write_params(workspace, params)
    commit_all(workspace, "tiny params")
    assert sorted(dvc_repro(workspace)) == sorted(STAGES)
    assert snakemake_plan(workspace) == []
    original = (workspace / "params.yaml").read_bytes()
    set_param(workspace, TRAIN_KEY, 3)
    assert snakemake_plan(workspace) == TRAIN_ONLY
    assert snakemake_plan(workspace) == TRAIN_ONLY  # planning left no trace
    (workspace / "params.yaml").write_bytes(original)
    assert snakemake_plan(workspace) == []
    set_param(workspace, SEARCH_SEED_KEY, 7)
    planned = snakemake_plan(workspace)
    assert planned[0] == "search" and set(planned) == SEARCH_ONWARD, planned
    (workspace / "params.yaml").write_bytes(original)
    assert snakemake_plan(workspace) == []
    # Snakemake runs the edit; going back to DVC's params is then a change for it too
    set_param(workspace, TRAIN_KEY, 3)
    assert snakemake_run(workspace) == TRAIN_ONLY
    assert snakemake_plan(workspace) == []
    (workspace / "params.yaml").write_bytes(original)
    assert snakemake_plan(workspace) == TRAIN_ONLY


def _git_tracked_outputs(dvc_yaml: Path) -> list[str]:
    """Outputs, metrics and plots declared with ``cache: false`` (versioned by git, not DVC)."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    tracked = []
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                if not isinstance(entry, dict):
                    continue
                tracked += [p for p, opts in entry.items() if (opts or {}).get("cache") is False]
    return tracked


@pytest.mark.slow
def test_dvc_remote_restores_instead_of_recomputing(dvc_clean, tmp_path):
    workspace = dvc_clean[0]
    remote = tmp_path / "remote"
    _run(["dvc", "remote", "add", "--local", "-f", "-d", "testremote", str(remote)], workspace)
    _run(["dvc", "push"], workspace)
    clone = make_workspace(tmp_path / "clone")
    # what a git clone brings: dvc.lock and the outputs DVC leaves to git (cache: false)
    for rel in ["dvc.lock", *_git_tracked_outputs(workspace / "dvc.yaml")]:
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(workspace / rel, clone / rel)
    _run(["dvc", "remote", "add", "--local", "-f", "-d", "testremote", str(remote)], clone)
    _run(["dvc", "pull"], clone)
    assert "up to date" in _run(["dvc", "status"], clone)
    assert dvc_repro(clone) == []
    assert stage_hashes(clone) == stage_hashes(workspace)


TRAIN_ONLY = ["train", "evaluate", "report"]
SEARCH_ONWARD = {"search", "compare", "train", "evaluate", "report"}


def _change_train(workspace: Path) -> None:
    """A train param: the quickstart's 60 epochs become 5 (a short rerun)."""
    assert get_param(workspace, TRAIN_KEY) != 5
    set_param(workspace, TRAIN_KEY, 5)


def _search_seed(workspace: Path) -> int:
    """The seed the search runs with (``search.seed``; null = the root seed)."""
    seed = get_param(workspace, SEARCH_SEED_KEY)
    return get_param(workspace, "seed") if seed is None else seed


def _change_search_seed(workspace: Path) -> None:
    set_param(workspace, SEARCH_SEED_KEY, _search_seed(workspace) + 1)


@pytest.mark.slow
def test_dvc_reruns_only_what_a_change_affects(dvc_clean):
    """Nothing changed: nothing runs; a train param: train onward. (A search seed reruns the
    search onward: checked by running it, in the sweep test below.)"""
    workspace = dvc_clean[0]
    start = time.monotonic()
    assert dvc_repro(workspace) == [], "a rerun with nothing changed executed stages"
    assert time.monotonic() - start < 60
    _change_train(workspace)
    assert dvc_repro(workspace) == TRAIN_ONLY


def _dvc_status_after_editing(workspace: Path, module: str) -> set[str]:
    """The stages ``dvc status`` lists as changed once ``module`` gets one more line."""
    path = workspace / module
    original = path.read_bytes()
    path.write_bytes(original + b"\n# edited\n")
    try:
        status = _run(["dvc", "status"], workspace)
    finally:
        path.write_bytes(original)
    return set(re.findall(r"^(\w+):$", status, flags=re.MULTILINE))


@pytest.mark.slow
def test_dvc_status_lists_only_the_stages_that_import_an_edited_module(dvc_clean):
    workspace = dvc_clean[0]
    assert _dvc_status_after_editing(workspace, "segnas/data/stem_cache.py") == {
        "cache_stem",
        "search",
        "compare",
    }
    assert _dvc_status_after_editing(workspace, "segnas/final_training.py") == {"train"}
    assert "up to date" in _run(["dvc", "status"], workspace)


def _queue_finished(workspace: Path, timeout_s: float = 1800) -> str:
    """Wait until the experiment queue has no queued or running task and no worker."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _run(["dvc", "queue", "status"], workspace)
        busy = re.search(r"\b(Queued|Running)\b", status)
        if not busy and re.search(r"Worker status: 0 active", status):
            return status
        time.sleep(5)
    _run(["dvc", "queue", "stop", "--kill"], workspace, check=False)
    raise AssertionError(f"the experiment queue did not finish in {timeout_s} s:\n{status}")


@pytest.mark.slow
def test_a_queued_search_seed_runs_and_exp_show_lists_it_beside_the_baseline(dvc_clean):
    """The sweep of docs/pipeline.md on the quickstart, one seed long: another search seed
    queued as a DVC experiment, run in the background by ``dvc queue start``, compared with the
    committed baseline by ``dvc exp show``. The new seed reruns exactly the search onward, not
    prepare, split or cache_stem; it trains 5 epochs instead of 60 (the train stage follows the
    search either way) to keep the test short."""
    workspace = dvc_clean[0]
    commit_all(workspace, "results")
    first = _search_seed(workspace)
    queued = _run(
        ["dvc", "exp", "run", "--queue", "-S", f"{SEARCH_SEED_KEY}={first + 1}", "-S", SHORT_TRAIN],
        workspace,
    )
    name = re.search(r"Queued experiment '([\w-]+)'", queued)[1]
    _run(["dvc", "queue", "start", "--jobs", "1"], workspace)
    status = _queue_finished(workspace)
    assert "Failed" not in status, status
    ran = re.findall(r"Running stage '(\w+)'", _run(["dvc", "queue", "logs", name], workspace))
    assert ran[0] == "search" and set(ran) == SEARCH_ONWARD, ran

    def seed_and_metrics(entry: dict) -> tuple:
        data = entry["data"]
        seed = data["params"]["params.yaml"]["data"]["search"]["seed"]
        return seed, {path: m.get("data") for path, m in data["metrics"].items()}

    shown = json.loads(_run(["dvc", "exp", "show", "--json"], workspace))
    baseline = [c for c in shown if c.get("experiments")]
    assert len(baseline) == 1, shown
    experiments = [seed_and_metrics(e["revs"][0]) for e in baseline[0]["experiments"]]
    assert [seed for seed, _ in experiments] == [first + 1], experiments
    base_seed, base_metrics = seed_and_metrics(baseline[0])
    assert base_seed == get_param(workspace, SEARCH_SEED_KEY)
    for metrics in (experiments[0][1], base_metrics):
        assert metrics and all(metrics.values()), metrics
    assert base_metrics["search/metrics.json"]["best_reward"] == dvc_clean[3]["best_reward"]


@pytest.mark.slow
def test_snakemake_reruns_only_what_a_change_affects(snakemake_clean):
    """No change: a real run executes nothing. A change: Snakemake's own plan (its dry run,
    which is what a run then executes) holds exactly the affected stages."""
    workspace = snakemake_clean[0]
    start = time.monotonic()
    output = _run(["snakemake", "--profile", "workflow/profiles/local"], workspace)
    assert "Nothing to be done" in output
    assert time.monotonic() - start < 60
    original = (workspace / "params.yaml").read_bytes()
    _change_train(workspace)
    assert snakemake_plan(workspace) == TRAIN_ONLY
    (workspace / "params.yaml").write_bytes(original)
    assert snakemake_plan(workspace) == []
    _change_search_seed(workspace)
    planned = snakemake_plan(workspace)
    (workspace / "params.yaml").write_bytes(original)
    assert planned[0] == "search" and set(planned) == SEARCH_ONWARD, planned


@pytest.mark.slow
def test_dvc_commit_adopts_a_snakemake_run_and_then_has_nothing_to_run(snakemake_clean):
    """The engines agree the other way round: outputs Snakemake made (e.g. on SLURM) are what
    DVC's stages declare, so ``dvc commit`` records them in dvc.lock and DVC reruns nothing."""
    workspace = snakemake_clean[0]
    assert "up to date" not in _run(["dvc", "status"], workspace)  # no dvc.lock yet
    _run(["dvc", "commit", "--force"], workspace)
    assert "up to date" in _run(["dvc", "status"], workspace)
    assert dvc_repro(workspace) == []
    assert stage_hashes(workspace) == snakemake_clean[2]


# ---------------------------------------------------------------- slow: SLURM executor


@pytest.mark.slow
def test_slurm_profile_runs_the_data_stages_as_cluster_jobs(slurm_cluster, tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    output = _run(["snakemake", "--profile", "workflow/profiles/slurm", "data/split"], workspace)
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", output)
    assert len(submitted) == 2, output[-3000:]
    assert (workspace / "data" / "split" / "meta_val.txt").is_file()
    assert "Nothing to be done" in _run(
        ["snakemake", "--profile", "workflow/profiles/slurm", "data/split"], workspace
    )


def test_dvc_plots_show_draws_every_registered_plot_with_no_edit(tmp_path):
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    _run(["dvc", "init", "--no-scm", "-q"], tmp_path)
    for plot in PLOTS:
        for path, column in plot.y.items():
            header = [c for c in (plot.x, column) if c is not None]
            sep = "\t" if path.endswith(".tsv") else ","
            values = [[str(i + 0.5 * k) for k in range(len(header))] for i in range(3)]
            rows = [sep.join(header), *(sep.join(row) for row in values)]
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text("\n".join(rows) + "\n")
    drawn = json.loads(_run(["dvc", "plots", "show", "--json"], tmp_path))["data"]
    assert set(drawn) == {plot.name for plot in PLOTS}
    for plot in PLOTS:
        points = drawn[plot.name][0]["content"]["data"]["values"]
        assert len(points) == 3 and all(c in points[0] for c in plot.y.values()), plot.name
    _run(["dvc", "plots", "show", "-o", "plots"], tmp_path)
    assert (tmp_path / "plots" / "index.html").is_file()


ALL_STAGES = ("prepare", "split", "cache_stem", "search", "compare", "train", "evaluate", "report")


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_a_stage_run_outside_the_project_root_says_so(stage, tmp_path, capsys):
    """Issue 29 item 10: run from another folder, a stage said "run the prepare stage first"."""
    from search_project import run_stage

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    params = str(REPO / "params.yaml")
    assert run_stage(elsewhere, stage, "--params", params) == 2
    err = capsys.readouterr().err
    assert f"the current directory {elsewhere} is not a project root" in err
    assert f"cd {REPO} and rerun python stages/{stage}.py" in err
    assert list(elsewhere.iterdir()) == []


def test_a_stage_script_run_from_another_folder_names_it(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "stages/prepare.py"), "--params", str(REPO / "params.yaml")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"prepare: error: the current directory {tmp_path} is not a project root" in (
        result.stderr
    )
    assert list(tmp_path.iterdir()) == []
