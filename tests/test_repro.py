"""Helpers behind ``segnas repro-check`` / ``repro-hash`` and the engines' code dependencies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from segnas.cli import main
from segnas.pipeline import reference, stages
from segnas.pipeline.deps import collapse_deps, expand_deps, stage_code_deps
from segnas.pipeline.digests import canonical_digest, tree_digest
from segnas.pipeline.reference import compare_metrics, format_table
from segnas.pipeline.stages import Output, Stage

REPO = Path(__file__).resolve().parents[1]


def _package(root: Path) -> Path:
    (root / "segnas" / "sub").mkdir(parents=True)
    (root / "stages").mkdir()
    (root / "segnas" / "__init__.py").write_text("")
    (root / "segnas" / "errors.py").write_text("")
    (root / "segnas" / "io.py").write_text("from .errors import X\n")
    (root / "segnas" / "unused.py").write_text("")
    (root / "segnas" / "sub" / "__init__.py").write_text("from .a import f\n")
    (root / "segnas" / "sub" / "a.py").write_text("from ..io import g\n")
    (root / "stages" / "demo.py").write_text("from segnas.sub import f\nimport segnas.errors\n")
    return root


def test_stage_code_deps_follow_absolute_and_relative_imports(tmp_path):
    root = _package(tmp_path)
    assert stage_code_deps("demo", root) == [
        "segnas/__init__.py",
        "segnas/errors.py",
        "segnas/io.py",
        "segnas/sub/__init__.py",
        "segnas/sub/a.py",
        "stages/demo.py",
    ]


def test_collapse_and_expand_deps_are_inverse(tmp_path):
    root = _package(tmp_path)
    files = stage_code_deps("demo", root)
    collapsed = collapse_deps(files, root)
    assert "segnas/sub" in collapsed and "segnas/sub/a.py" not in collapsed
    assert "segnas/io.py" in collapsed  # segnas/ itself is never collapsed (unused.py)
    assert expand_deps(collapsed, root) == set(files)


def test_canonical_digest_ignores_wall_clock_fields_only(tmp_path):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_text(json.dumps({"miou": 0.5, "train_seconds": 1.0, "m": {"latency_ms": {"x": 3}}}))
    b.write_text(json.dumps({"m": {"latency_ms": {"x": 9}}, "miou": 0.5, "train_seconds": 7.5}))
    c.write_text(json.dumps({"miou": 0.6, "train_seconds": 1.0}))
    assert canonical_digest(a) == canonical_digest(b) != canonical_digest(c)
    t1, t2 = tmp_path / "a.tsv", tmp_path / "b.tsv"
    t1.write_text("step\tloss\ttimestamp\n0\t1.5\t100\n")
    t2.write_text("step\tloss\ttimestamp\n0\t1.5\t200\n")
    assert canonical_digest(t1) == canonical_digest(t2)
    t2.write_text("step\tloss\ttimestamp\n0\t1.6\t100\n")
    assert canonical_digest(t1) != canonical_digest(t2)


def test_canonical_digest_of_checkpoints_compares_tensors(tmp_path):
    weights = {"w": torch.arange(4.0)}
    torch.save({"state": weights, "meta": {"epoch": 3, "seconds": 1.0}}, tmp_path / "a.pt")
    torch.save({"state": weights, "meta": {"epoch": 3, "seconds": 2.0}}, tmp_path / "b.pt")
    torch.save({"state": {"w": torch.ones(4)}, "meta": {"epoch": 3}}, tmp_path / "c.pt")
    digest = canonical_digest(tmp_path / "a.pt")
    assert digest == canonical_digest(tmp_path / "b.pt") != canonical_digest(tmp_path / "c.pt")


def test_tree_digest_ignores_snakemake_timestamps(tmp_path):
    for name in ("one", "two"):
        (tmp_path / name / "out").mkdir(parents=True)
        (tmp_path / name / "out" / "x.bin").write_bytes(b"abc")
    (tmp_path / "two" / "out" / ".snakemake_timestamp").write_bytes(b"")
    one, files = tree_digest(tmp_path / "one", ["out"])
    assert one == tree_digest(tmp_path / "two", ["out"])[0]
    assert list(files) == ["out/x.bin"]


def test_compare_metrics_table_marks_differences():
    rows = compare_metrics(
        {"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0 + 1e-9, "b": 2.5}, abs_tol=1e-6, rel_tol=0.0
    )
    assert [(key, ok) for key, *_, ok in rows] == [("a", True), ("b", False), ("c", False)]
    table = format_table(rows)
    assert "DIFF" in table and "missing" in table and table.splitlines()[0].startswith("metric")


def _one_stage_registry(monkeypatch, output: Output) -> None:
    """Make the pipeline a single stage ``demo`` (``stages/demo.py``) that writes ``output``."""
    demo = (Stage("demo", "a demo stage", (), (), (output,)),)
    monkeypatch.setattr(stages, "REGISTRY", demo)
    monkeypatch.setattr(reference, "REGISTRY", demo)
    monkeypatch.setattr(stages, "NESTED_METRICS", ())


def test_repro_hash_cli_compares_trees(tmp_path, capsys, monkeypatch):
    _one_stage_registry(monkeypatch, Output("out"))
    for name in ("one", "two"):
        root = tmp_path / name
        (root / "out").mkdir(parents=True)
        (root / "out" / "f.txt").write_text(name if name == "two" else "one")
    assert main(["repro-hash", "--root", str(tmp_path / "one")]) == 0
    assert (
        main(["repro-hash", "--root", str(tmp_path / "one"), "--against", str(tmp_path / "two")])
        == 1
    )
    out = capsys.readouterr().out
    assert "DIFFERENT" in out and "differs: out/f.txt" in out and "0/1 stages identical" in out


def _fake_project(root: Path, monkeypatch, value: float) -> Path:
    """A project whose single stage writes ``{"miou": value, "seconds": ...}``."""
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    (root / "stages").mkdir()
    (root / "stages" / "demo.py").write_text(
        "import json, pathlib, time\n"
        "pathlib.Path('out').mkdir()\n"
        f"pathlib.Path('out/metrics.json').write_text(json.dumps({{'miou': {value}, "
        "'seconds': time.time()}))\n"
    )
    _one_stage_registry(monkeypatch, Output("out/metrics.json", metric=True))
    return root


def test_repro_check_runs_from_scratch_and_compares_with_the_reference(
    tmp_path, capsys, monkeypatch
):
    project = _fake_project(tmp_path / "project", monkeypatch, 0.25)
    reference = tmp_path / "reference.json"
    args = ["repro-check", "--root", str(project), "--reference", str(reference)]
    assert main([*args, "--workdir", str(tmp_path / "run1"), "--update"]) == 0
    stored = json.loads(reference.read_text())
    assert stored["metrics"] == {"out/metrics.json:miou": 0.25}  # wall clock left out
    assert main([*args, "--workdir", str(tmp_path / "run2"), "--keep"]) == 0
    assert "1/1 metrics within" in capsys.readouterr().out
    stored["metrics"]["out/metrics.json:miou"] = 0.3
    reference.write_text(json.dumps(stored))
    assert main([*args, "--workdir", str(tmp_path / "run3")]) == 1
    table = capsys.readouterr().out
    assert "DIFF" in table and "0.3" in table and "0.25" in table
    assert main([*args, "--workdir", str(tmp_path / "run3")]) == 2  # not empty: from scratch only
    capsys.readouterr()
    # a finished run is checked where it is, without running anything
    assert main([*args, "--existing", str(tmp_path / "run2")]) == 1  # against the edited 0.3
    stored["metrics"]["out/metrics.json:miou"] = 0.25
    reference.write_text(json.dumps(stored))
    assert main([*args, "--existing", str(tmp_path / "run2")]) == 0
    assert "1/1 metrics within" in capsys.readouterr().out
    assert (tmp_path / "run2" / "out" / "metrics.json").is_file()
    (tmp_path / "run2" / "params.yaml").write_text("seed: 1\n")
    assert main([*args, "--existing", str(tmp_path / "run2")]) == 2
    assert "params.yaml is not configs/quickstart.yaml" in capsys.readouterr().err


def test_repro_hash_against_a_missing_tree_names_that_tree(tmp_path, capsys):
    from segnas.cli import main

    missing = tmp_path / "nonexistent"
    assert main(["repro-hash", "--root", str(tmp_path), "--against", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--against" in err
