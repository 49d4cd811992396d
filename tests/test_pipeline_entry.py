"""The stage entry: a stage sees only the params sections the registry declares for it, and
user errors become one line with exit status 2."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from segnas.errors import ConfigError
from segnas.pipeline.entry import DeclaredParams, UndeclaredSection, run_stage

PARAMS = {"seed": 0, "split": {"dataset": "d", "val_fraction": 0.1}, "search": {"rounds": 2}}


def test_a_stage_reads_its_declared_sections_and_nothing_else():
    params = DeclaredParams(PARAMS, "split")
    assert params["split"]["dataset"] == "d" and params.get("seed") == 0
    assert "seed" in params
    for read in (
        lambda: params["search"],
        lambda: params.get("search"),
        lambda: "search" in params,
    ):
        with pytest.raises(UndeclaredSection, match="stage 'split' read params section 'search'"):
            read()


def test_run_stage_prints_the_closing_line_or_one_error_line(capsys, monkeypatch):
    monkeypatch.setattr("segnas.pipeline.entry.load_params", lambda path: dict(PARAMS))

    def body(params: DeclaredParams, args: argparse.Namespace) -> str:
        return f"split: {params['split']['dataset']} from {args.params}"

    assert run_stage("split", body, ["--params", "p.yaml"]) == 0
    assert capsys.readouterr().out == "split: d from p.yaml\n"

    def failing(params: DeclaredParams, args: argparse.Namespace) -> str:
        raise ConfigError("p.yaml: split.val_fraction must be below 1")

    assert run_stage("split", failing, []) == 2
    assert capsys.readouterr().err == "split: error: p.yaml: split.val_fraction must be below 1\n"

    def undeclared(params: DeclaredParams, args: argparse.Namespace) -> str:
        return str(params["search"])

    with pytest.raises(UndeclaredSection):  # a bug, not a user error: never swallowed
        run_stage("split", undeclared, [])


def test_every_stage_script_goes_through_run_stage():
    """So every stage sees only its declared sections (a run reading another one fails)."""
    from segnas.pipeline.stages import REGISTRY

    root = Path(__file__).resolve().parents[1]
    for entry in REGISTRY:
        text = (root / entry.script).read_text(encoding="utf-8")
        assert f'run_stage("{entry.name}"' in text, entry.script
        assert "load_params" not in text, f"{entry.script} reads params around run_stage"
