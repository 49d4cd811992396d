"""Controller vs random: sampling, the 4N evaluations, Spearman's rho, resumable files."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
from dataclasses import dataclass, replace

import pytest
from config_values import compare_config, eval_setup, quickstart_section
from search_project import TINY_SEARCH_EVAL, make_project, run_stage, tiny_params, write_params

from segnas.compare.config import CompareConfig, compare_hash
from segnas.compare.steps import (
    GROUPS,
    CompareLayout,
    assemble,
    draw_architectures,
    long_setup,
    run_compare,
    run_compare_trial,
    search_setup_in_long,
    write_samples,
)
from segnas.config import load_config
from segnas.errors import ArtifactError, ConfigError
from segnas.published import resolve_genotype
from segnas.search.controller import Controller, genotype_to_choices
from segnas.seeds import derive_seed
from segnas.space import DEFAULT_SPACE
from segnas.stats import spearman
from segnas.trial.recipe import TrialResult
from segnas.trial.spec import TrialSpec

TARGET = resolve_genotype("arch0")


def similarity(genotype) -> float:
    mine, theirs = (
        genotype_to_choices(genotype, DEFAULT_SPACE),
        genotype_to_choices(TARGET, DEFAULT_SPACE),
    )
    return sum(a == b for a, b in zip(mine, theirs, strict=True)) / len(mine)


def fake_evaluator(setup: str):
    """Search setup: similarity to arch0; longer setup: the same plus a hash-driven offset."""

    def evaluate(genotype, seed):
        bonus = 0.0 if setup == "search" else int(genotype.hash[:2], 16) / 2550
        return TrialResult(genotype.to_text(), genotype.hash, reward=similarity(genotype) + bonus)

    return evaluate


def test_config_and_long_setup():
    section = quickstart_section("compare")
    with pytest.raises(ConfigError, match="compare.num_archs"):
        load_config(CompareConfig, {**section, "num_archs": 1}, "compare")
    with pytest.raises(ConfigError, match="compare.n: unknown key"):
        load_config(CompareConfig, {**section, "n": 3}, "compare")
    setup = eval_setup(phase2_epochs=5)
    longer = long_setup(setup, 20)
    assert longer.phase2_epochs == 20 and longer.phase1_epochs == setup.phase1_epochs
    assert compare_hash("abc", compare_config(workers=4)) == compare_hash("abc", compare_config())


def test_draws_are_seeded_and_valid():
    controller = Controller(DEFAULT_SPACE, hidden_size=16, num_layers=1, seed=0)
    first = draw_architectures(controller, 4, seed=3)
    again = draw_architectures(controller, 4, seed=3)
    other = draw_architectures(controller, 4, seed=4)
    assert first == again and first != other
    for group in GROUPS:
        assert len(first[group]) == 4
        for genotype in first[group]:
            DEFAULT_SPACE.validate(genotype)


def test_steps_write_csv_and_rho_and_resume(tmp_path):
    layout = CompareLayout(tmp_path / "compare")
    config = compare_config(num_archs=5)
    controller = Controller(DEFAULT_SPACE, hidden_size=16, num_layers=1, seed=0)
    write_samples(layout, controller, config, 0, "h1")
    for group, setup, index in layout.jobs(config.num_archs):
        run_compare_trial(layout, "h1", 0, group, setup, index, fake_evaluator(setup))
    assert len(list((tmp_path / "compare/evals").glob("*.json"))) == 20
    metrics = assemble(layout, config, "h1")
    rows = list(csv.DictReader(io.StringIO(layout.csv.read_text())))
    assert [r["group"] for r in rows] == ["controller"] * 5 + ["random"] * 5
    for group in GROUPS:
        mine = [r for r in rows if r["group"] == group]
        short = [float(r["reward_search"]) for r in mine]
        long = [float(r["reward_long"]) for r in mine]
        assert short == [similarity(resolve_genotype(r["genotype"])) for r in mine]
        assert metrics[group]["spearman_rho"] == pytest.approx(spearman(short, long))
        assert metrics[group]["reward_long"]["mean"] == pytest.approx(sum(long) / 5)
    assert json.loads(layout.metrics.read_text()) == json.loads(json.dumps(metrics))

    # a finished evaluation is reused, never recomputed
    def fail(genotype, seed):
        raise AssertionError("recomputed")

    run_compare_trial(layout, "h1", 0, "random", "long", 2, fail)
    with pytest.raises(ArtifactError, match="params hash"):
        run_compare_trial(layout, "other", 0, "random", "long", 2, fail)


def test_local_run_matches_the_fan_out_steps(tmp_path):
    controller = Controller(DEFAULT_SPACE, hidden_size=16, num_layers=1, seed=0)
    config = compare_config(num_archs=3)
    spec = TrialSpec("target", eval_setup(), "arch0")
    local = CompareLayout(tmp_path / "local")
    metrics = run_compare(local, controller, config, {"search": spec, "long": spec}, 0, "h")
    steps = CompareLayout(tmp_path / "steps")
    write_samples(steps, controller, config, 0, "h")
    for job in steps.jobs(config.num_archs):
        run_compare_trial(steps, "h", 0, *job, spec.build())
    assert assemble(steps, config, "h", run_provenance=spec.provenance()) == metrics
    assert steps.csv.read_text() == local.csv.read_text()
    assert metrics["provenance"]["threads"] == spec.setup.threads


def test_search_setup_read_off_the_long_evaluation_equals_its_own(tmp_path):
    """A phase-1-only search setup: the local run trains 2N times and derives the search
    setup's results from the long evaluations; they equal separate evaluations (the fan-out
    steps) bit for bit, and so do compare.csv and the metrics."""
    root = make_project(tmp_path / "project", tiny_params())
    setup = eval_setup(**{**TINY_SEARCH_EVAL, "phase2_epochs": 0})
    search = TrialSpec(
        "train",
        setup,
        prepared_dir=str(root / "data/prepared/synthetic"),
        split_dir=str(root / "data/split"),
        cache_dir=str(root / "cache/stem"),
    )
    specs = {"search": search, "long": replace(search, setup=long_setup(setup, 1))}
    assert search_setup_in_long(specs)
    assert not search_setup_in_long({"search": specs["long"], "long": specs["long"]})
    stopping = replace(search, setup=replace(setup, early_stop_reward=0.5))
    assert not search_setup_in_long({"search": stopping, "long": specs["long"]})
    controller = Controller(DEFAULT_SPACE, hidden_size=16, num_layers=1, seed=0)
    config = compare_config(num_archs=2)
    stream = io.StringIO()
    local = CompareLayout(tmp_path / "local")
    metrics = run_compare(local, controller, config, specs, 0, "h", stream)
    assert "read off the long evaluations (4 trainings)" in stream.getvalue()
    derived = json.loads(local.evaluation("random", "search", 1).read_text())
    assert derived["from"] == "random_long_0001.json"

    steps = CompareLayout(tmp_path / "steps")
    write_samples(steps, controller, config, 0, "h")
    built = {name: spec.build() for name, spec in specs.items()}
    for group, setup_name, index in steps.jobs(config.num_archs):
        run_compare_trial(steps, "h", 0, group, setup_name, index, built[setup_name])
    for job in steps.jobs(config.num_archs):
        mine = TrialResult.from_dict(json.loads(local.evaluation(*job).read_text())["result"])
        theirs = TrialResult.from_dict(json.loads(steps.evaluation(*job).read_text())["result"])
        assert mine.status == "ok" and mine.to_row() == theirs.to_row()
    assert assemble(steps, config, "h", run_provenance=search.provenance()) == metrics
    assert steps.csv.read_text() == local.csv.read_text()


@dataclass(frozen=True)
class DyingSpec(TrialSpec):
    """The ``target`` reward, but the job with seed ``die_seed`` SIGKILLs its worker process:
    always, or only the first time when ``marker`` is set (a file created at that death)."""

    die_seed: int = -1
    marker: str = ""

    def build(self):
        evaluate = super().build()

        def dying(genotype, seed):
            if seed == self.die_seed and not (self.marker and os.path.exists(self.marker)):
                if self.marker:
                    open(self.marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            return evaluate(genotype, seed)

        return dying


def test_dying_workers_are_retried_once_then_recorded(tmp_path):
    """A job whose worker dies once gets its normal result; one that dies twice is recorded
    as worker_died with reward 0; everything else equals a run without deaths."""
    controller = Controller(DEFAULT_SPACE, hidden_size=16, num_layers=1, seed=0)
    config = compare_config(num_archs=3, workers=2)
    plain = TrialSpec("target", eval_setup(), "arch0")
    once = DyingSpec(
        "target",
        eval_setup(),
        "arch0",
        die_seed=derive_seed(0, "compare", "controller", 0),
        marker=str(tmp_path / "died"),
    )
    always = DyingSpec(
        "target", eval_setup(), "arch0", die_seed=derive_seed(0, "compare", "random", 1)
    )
    stream = io.StringIO()
    layout = CompareLayout(tmp_path / "dying")
    run_compare(layout, controller, config, {"search": once, "long": always}, 0, "h", stream)
    assert (tmp_path / "died").exists()
    clean = CompareLayout(tmp_path / "clean")
    run_compare(
        clean, controller, compare_config(num_archs=3), {"search": plain, "long": plain}, 0, "h"
    )
    rows = list(csv.DictReader(io.StringIO(layout.csv.read_text())))
    expected = list(csv.DictReader(io.StringIO(clean.csv.read_text())))
    died = [(r["group"], r["index"]) for r in rows if r["status_long"] == "worker_died"]
    assert died == [("random", "1")]
    assert {r["status_search"] for r in rows} == {"ok"}
    for row, want in zip(rows, expected, strict=True):
        if (row["group"], row["index"]) == ("random", "1"):
            assert row["reward_long"] == "0.0" and row["reward_search"] == want["reward_search"]
        else:
            assert row == want
    log = stream.getvalue()
    assert "controller_search_0000.json died; retrying it once" in log
    assert "random_long_0001.json died again; recorded as worker_died" in log


def test_the_compare_stage_refuses_a_search_of_another_strategy(tmp_path, capsys):
    params = tiny_params(strategy="random", objective="target")
    root = tmp_path / "project"
    root.mkdir()
    write_params(root, params)
    assert run_stage(root, "compare") == 2
    err = capsys.readouterr().err
    assert "search.strategy is 'random'" in err and "segnas study" in err


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        (("eval", "lr_decoder"), 5.0e-3, "search.eval.lr_decoder 0.002 -> 0.005"),
        (("rounds",), 2, "search.rounds 1 -> 2"),
    ],
)
def test_compare_refuses_a_search_of_other_params_naming_the_keys(
    tmp_path, capsys, key, value, shown
):
    """Issue 29, item 4: the controller's search must be today's search, through the stage."""
    from search_project import run_stage, write_params

    params = tiny_params(rounds=1)
    params["compare"].update(num_archs=2, workers=1)
    root = make_project(tmp_path / "p", params)
    assert run_stage(root, "search") == 0
    section = params["search"]
    for name in key[:-1]:
        section = section[name]
    section[key[-1]] = value
    write_params(root, params)
    capsys.readouterr()
    assert run_stage(root, "compare") == 2
    err = capsys.readouterr().err
    assert "search/controller/final.pt comes from a search of other params" in err, err
    assert f"({shown})" in err and "rerun the search stage first" in err, err
    assert not (root / "compare").exists()
