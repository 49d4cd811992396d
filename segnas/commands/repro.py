"""``segnas repro-check`` and ``segnas repro-hash``: prove that the quickstart reproduces.

``repro-check`` copies the repository's sources into a fresh directory, switches it to a named
configuration, runs every stage of ``dvc.yaml`` in order from scratch (or, ``--existing``, takes
a finished run), and compares the key metrics with a committed reference file within a
tolerance, printing a table of differences.
``repro-hash`` prints one SHA-256 per stage over that stage's outputs (and compares two trees),
which CI uses for the determinism and engine-agreement checks. This module parses arguments;
the work is done in ``segnas.pipeline``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from ..errors import SegnasError
from ..io import read_json, write_json
from ..named_configs import config_text, use_config
from ..pipeline.deps import collapse_deps, stage_code_deps
from ..pipeline.digests import numeric_metrics, stage_hashes
from ..pipeline.reference import (
    DEFAULT_ABS_TOL,
    REFERENCE,
    compare_metrics,
    copy_sources,
    environment,
    environment_note,
    format_table,
    run_stages,
)
from ..pipeline.stages import STAGES
from .arch import tolerance


def _finished_run(path: str, config: str) -> Path:
    """``path``, a finished run of ``config`` (its params.yaml is what ``segnas config use
    <config>`` writes there)."""
    workdir = Path(path).resolve()
    params, wanted = workdir / "params.yaml", workdir / "configs" / f"{config}.yaml"
    if not params.is_file() or not wanted.is_file():
        raise SegnasError(f"--existing {path}: no params.yaml and {wanted.name} in configs/ there")
    if params.read_text(encoding="utf-8") != config_text(config, workdir / "configs"):
        raise SegnasError(
            f"--existing {path}: params.yaml is not configs/{config}.yaml; run "
            f"`segnas config use {config} && dvc repro` there, or pass --config"
        )
    return workdir


def _check(args: argparse.Namespace) -> int:
    reference_path = Path(args.reference)
    if args.existing:
        if args.workdir or args.update:
            raise SegnasError("--existing checks a finished run: leave out --workdir and --update")
        workdir = _finished_run(args.existing, args.config)
    else:
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="segnas-repro-")).resolve()
        if workdir.exists() and any(workdir.iterdir()):
            raise SegnasError(f"{workdir} is not empty; repro-check runs from scratch in a new dir")
        workdir.mkdir(parents=True, exist_ok=True)
        copy_sources(Path(args.root).resolve(), workdir)
        use_config(args.config, workdir / "params.yaml", workdir / "configs")
        run_stages(workdir)
    current = numeric_metrics(workdir)
    if args.update:
        abs_tol = DEFAULT_ABS_TOL if args.abs_tol is None else args.abs_tol
        rel_tol = 0.0 if args.rel_tol is None else args.rel_tol
        reference = {"config": args.config, "abs_tol": abs_tol, "rel_tol": rel_tol}
        write_json(reference_path, {**reference, "environment": environment(), "metrics": current})
        print(f"wrote {len(current)} reference metrics to {reference_path}")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        return 0
    reference = read_json(reference_path)
    abs_tol = (
        args.abs_tol if args.abs_tol is not None else reference.get("abs_tol", DEFAULT_ABS_TOL)
    )
    rel_tol = args.rel_tol if args.rel_tol is not None else reference.get("rel_tol", 0.0)
    rows = compare_metrics(reference["metrics"], current, abs_tol, rel_tol)
    print(format_table(rows))
    extra = sorted(set(current) - set(reference["metrics"]))
    if extra:
        print(f"not in the reference (ignored): {', '.join(extra)}")
    bad = [row[0] for row in rows if not row[4]]
    print(
        f"repro-check: {len(rows) - len(bad)}/{len(rows)} metrics within abs {abs_tol:g} "
        f"rel {rel_tol:g} of {reference_path}; run dir {workdir}"
    )
    if bad:
        print(environment_note(reference.get("environment")))
    if not args.keep and not bad and not args.existing:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if bad or not rows else 0


def _hash(args: argparse.Namespace) -> int:
    for option, tree in (("--root", args.root), ("--against", args.against)):
        if tree is not None and not Path(tree).is_dir():
            raise SegnasError(f"{option} {tree}: no such directory (a tree with stage outputs)")
    mine = stage_hashes(args.root)
    if not args.against:
        print(json.dumps({k: v["sha256"] for k, v in mine.items()}, indent=2))
        return 0
    other = stage_hashes(args.against)
    differing = 0
    for stage, info in mine.items():
        theirs = other[stage]
        same = info["sha256"] == theirs["sha256"]
        differing += not same
        print(f"{stage:12s} {'identical' if same else 'DIFFERENT'}  {info['sha256'][:16]}")
        if not same:
            for path in sorted(set(info["files"]) | set(theirs["files"])):
                if info["files"].get(path) != theirs["files"].get(path):
                    print(f"    differs: {path}")
    print(f"repro-hash: {len(mine) - differing}/{len(mine)} stages identical")
    return 1 if differing else 0


def _deps(args: argparse.Namespace) -> int:
    for stage in args.stages or STAGES:
        print(f"{stage}:")
        for dep in collapse_deps(stage_code_deps(stage, args.root), args.root):
            print(f"  - {dep}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``repro-check``, ``repro-hash`` and ``repro-deps``."""
    check = subparsers.add_parser(
        "repro-check", help="run a configuration from scratch and compare metrics to a reference"
    )
    check.add_argument("--config", default="quickstart", help="configuration (default quickstart)")
    check.add_argument("--reference", default=str(REFERENCE), help=f"default {REFERENCE}")
    check.add_argument("--root", default=".", help="repository to copy sources from")
    check.add_argument("--workdir", help="empty run directory (default: a new temporary one)")
    check.add_argument(
        "--abs-tol", type=tolerance, help="absolute tolerance (default: reference's)"
    )
    check.add_argument(
        "--rel-tol", type=tolerance, help="relative tolerance (default: reference's)"
    )
    check.add_argument(
        "--existing",
        metavar="DIR",
        help="compare the metrics of a finished run of --config in DIR (e.g. after `make "
        "demo`) instead of running one",
    )
    check.add_argument("--keep", action="store_true", help="keep the run directory")
    check.add_argument("--update", action="store_true", help="rewrite the reference file")
    check.set_defaults(func=_check)

    digest = subparsers.add_parser(
        "repro-hash", help="SHA-256 of every stage's outputs; --against compares two trees"
    )
    digest.add_argument("--root", default=".", help="tree with the outputs (default .)")
    digest.add_argument("--against", help="another tree to compare stage by stage")
    digest.set_defaults(func=_hash)

    deps = subparsers.add_parser(
        "repro-deps",
        help="the code dependencies of stages (for dvc.yaml; the Snakefile computes them)",
    )
    deps.add_argument("stages", nargs="*", help="stages (default: all eight)")
    deps.add_argument("--root", default=".", help="repository root (default .)")
    deps.set_defaults(func=_deps)
