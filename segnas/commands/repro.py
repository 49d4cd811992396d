"""``segnas repro-check`` and ``segnas repro-hash``: prove that the quickstart reproduces.

``repro-check`` copies the repository's sources into a fresh directory, switches it to a named
configuration, runs every stage of ``dvc.yaml`` in order from scratch, and compares the key
metrics with a committed reference file within a tolerance, printing a table of differences.
``repro-hash`` prints one SHA-256 per stage over that stage's outputs (and compares two trees),
which CI uses for the determinism and engine-agreement checks.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..config import flatten, use_config
from ..errors import ConfigError, SegnasError
from ..io import read_json, read_yaml, sha256_file, sha256_json, write_json

REFERENCE = Path("workflow/reference/quickstart_metrics.json")
# Across CPU models (e.g. Intel AVX-512 vs AMD EPYC) oneDNN rounds differently and the short
# trainings amplify it: search and compare rewards of the quickstart drift by up to ~2e-3.
# Bit-identity on one machine is what `repro-hash` checks; the reference check allows this.
DEFAULT_ABS_TOL = 0.01
# Files an engine writes into output directories for its own bookkeeping.
IGNORED_NAMES = frozenset({".snakemake_timestamp"})
# Wall-clock measurements (durations, latencies, timestamps) cannot repeat bit for bit; the
# output hashes leave out JSON keys, CSV/TSV columns and checkpoint entries with these names.
VOLATILE = re.compile(
    r"(^|_)(seconds|secs|sec|ms|time|timestamp|elapsed|duration|latency|date)(_|$)"
)
# Documents that render wall-clock measurements in prose/tables: compared for presence only.
MEASUREMENT_DOCUMENTS = frozenset({"report/report.html", "report/report.md"})
# Paths copied into a fresh run directory (everything the stages and engines read).
SOURCE_PATHS = (
    "segnas",
    "stages",
    "configs",
    "workflow",
    "dvc.yaml",
    "params.yaml",
    "Snakefile",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
)


STAGES = ("prepare", "split", "cache_stem", "search", "compare", "train", "evaluate", "report")


def _segnas_imports(file: Path, package_root: Path) -> set[str]:
    """Modules of the ``segnas`` package that ``file`` imports directly."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    inside = file.resolve().is_relative_to(package_root.resolve())
    own = (
        file.resolve().relative_to(package_root.resolve().parent).with_suffix("")
        if inside
        else None
    )
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "segnas")
        elif isinstance(node, ast.ImportFrom):
            if node.level and own is not None:
                package = list(own.parts[:-1])
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.level == 0 and node.module and node.module.split(".")[0] == "segnas":
                module = node.module
            else:
                continue
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def _module_file(module: str, package_root: Path) -> Path | None:
    parts = module.split(".")[1:]
    if not parts:
        return package_root / "__init__.py"
    relative = Path(*parts)
    for candidate in (
        package_root / relative.with_suffix(".py"),
        package_root / relative / "__init__.py",
    ):
        if candidate.is_file():
            return candidate
    return None


def stage_code_deps(stage: str, root: str | Path = ".") -> list[str]:
    """``stages/<stage>.py`` and every ``segnas`` source file it imports, transitively.

    Both engines declare these as the stage's code dependencies, so editing a library module
    reruns exactly the stages that import it.
    """
    root = Path(root)
    package_root = root / "segnas"
    script = root / "stages" / f"{stage}.py"
    if not script.is_file():
        raise SegnasError(f"{script} does not exist")
    files = {script}
    todo = [script]
    while todo:
        current = todo.pop()
        for module in _segnas_imports(current, package_root):
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):
                path = _module_file(".".join(parts[:depth]), package_root)
                if path is not None and path not in files:
                    files.add(path)
                    todo.append(path)
    return sorted(p.relative_to(root).as_posix() for p in files)


def collapse_deps(files: list[str], root: str | Path = ".") -> list[str]:
    """Replace the files of a package folder by the folder when all its modules are listed.

    ``dvc.yaml`` declares these (shorter, same meaning: DVC hashes the whole folder).
    """
    root = Path(root)
    chosen = set(files)
    folders = sorted({str(Path(f).parent) for f in files if f.startswith("segnas/")}, key=len)
    for folder in folders:
        if folder == "segnas":
            continue
        modules = {p.relative_to(root).as_posix() for p in (root / folder).rglob("*.py")}
        if modules and modules <= chosen:
            chosen = (chosen - modules) | {folder}
    return sorted(chosen)


def expand_deps(deps: list[str], root: str | Path = ".") -> set[str]:
    """The Python files behind ``deps`` (folders expanded to their ``*.py`` files)."""
    root = Path(root)
    found: set[str] = set()
    for dep in deps:
        path = root / dep
        if path.is_dir():
            found.update(p.relative_to(root).as_posix() for p in path.rglob("*.py"))
        else:
            found.add(dep)
    return found


def dvc_stages(root: str | Path = ".") -> dict[str, dict[str, Any]]:
    """The ``stages`` mapping of ``dvc.yaml`` in file order (prepare ... report)."""
    path = Path(root) / "dvc.yaml"
    stages = (read_yaml(path) or {}).get("stages")
    if not isinstance(stages, dict):
        raise ConfigError(f"{path}: no 'stages' mapping")
    return stages


def _out_paths(entries: list[Any]) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or []]


def stage_outputs(root: str | Path = ".") -> dict[str, list[str]]:
    """Each stage's declared outputs (``outs``, ``metrics`` and ``plots``) from ``dvc.yaml``."""
    return {
        name: _out_paths(spec.get("outs")) + _out_paths(spec.get("metrics"))
        for name, spec in dvc_stages(root).items()
    }


def metric_files(root: str | Path = ".") -> list[str]:
    """All files declared as ``metrics`` in ``dvc.yaml`` (by stages and at the top level)."""
    staged = [p for spec in dvc_stages(root).values() for p in _out_paths(spec.get("metrics"))]
    top = (read_yaml(Path(root) / "dvc.yaml") or {}).get("metrics") or []
    return staged + [str(p) for p in top]


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    found = [p for p in path.rglob("*") if p.is_file() and p.name not in IGNORED_NAMES]
    return sorted(found, key=lambda p: p.as_posix())


def _strip_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_volatile(v)
            for k, v in value.items()
            if not (isinstance(k, str) and VOLATILE.search(k))
        }
    if isinstance(value, (list, tuple)):
        return [_strip_volatile(v) for v in value]
    return value


def _tensor_safe(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return hashlib.sha256(value.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    if isinstance(value, dict):
        return {str(k): _tensor_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tensor_safe(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)


def canonical_digest(path: str | Path) -> str:
    """SHA-256 of a file's content without its wall-clock measurements (see ``VOLATILE``).

    JSON: volatile keys dropped, at any depth. CSV/TSV: volatile columns dropped. Checkpoints
    (``.pt``, loaded with ``weights_only=True``): tensors by their bytes, volatile keys dropped.
    Anything else: the raw bytes.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            return sha256_json(_strip_volatile(data))
        if suffix in (".csv", ".tsv"):
            delimiter = "\t" if suffix == ".tsv" else ","
            rows = list(
                csv.reader(path.read_text(encoding="utf-8").splitlines(), delimiter=delimiter)
            )
            if rows:
                keep = [i for i, name in enumerate(rows[0]) if not VOLATILE.search(name)]
                rows = [[row[i] for i in keep if i < len(row)] for row in rows]
            return sha256_json(rows)
        if suffix == ".pt":
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
            return sha256_json(_strip_volatile(_tensor_safe(state)))
    except (ValueError, UnicodeDecodeError, RuntimeError, OSError):
        pass
    return sha256_file(path)


def tree_digest(root: str | Path, outputs: list[str]) -> tuple[str, dict[str, str]]:
    """(combined SHA-256, {relative file: SHA-256}) over the files of ``outputs``."""
    root = Path(root)
    files: dict[str, str] = {}
    for out in outputs:
        if not (root / out).exists():
            raise SegnasError(f"{root / out} does not exist; the stage has not run there")
        for file in _files_under(root / out):
            relative = file.relative_to(root).as_posix()
            files[relative] = (
                "measurement-document"
                if relative in MEASUREMENT_DOCUMENTS
                else canonical_digest(file)
            )
    combined = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return combined, files


def stage_hashes(root: str | Path = ".") -> dict[str, dict[str, Any]]:
    """``{stage: {"sha256": ..., "files": {path: sha256}}}`` for every stage of ``dvc.yaml``."""
    result = {}
    for stage, outs in stage_outputs(root).items():
        digest, files = tree_digest(root, outs)
        result[stage] = {"sha256": digest, "files": files}
    return result


def numeric_metrics(root: str | Path = ".") -> dict[str, float]:
    """``{"<file>:<dotted key>": value}`` for every number in the declared metrics files
    (wall-clock measurements left out, see ``VOLATILE``)."""
    values: dict[str, float] = {}
    for name in metric_files(root):
        data = read_json(Path(root) / name)
        if not isinstance(data, dict):
            continue
        for key, value in flatten(_strip_volatile(data)).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values[f"{name}:{key}"] = float(value)
    return values


def compare_metrics(
    reference: dict[str, float], current: dict[str, float], abs_tol: float, rel_tol: float
) -> list[tuple[str, float | None, float | None, float | None, bool]]:
    """Rows ``(key, reference, current, |diff|, ok)`` for every key of ``reference``."""
    rows = []
    for key in sorted(reference):
        ref, cur = reference[key], current.get(key)
        if cur is None:
            rows.append((key, ref, None, None, False))
            continue
        both_nan = math.isnan(ref) and math.isnan(cur)
        ok = both_nan or math.isclose(ref, cur, rel_tol=rel_tol, abs_tol=abs_tol)
        rows.append((key, ref, cur, None if both_nan else abs(cur - ref), ok))
    return rows


def format_table(rows: list[tuple[str, Any, Any, Any, bool]]) -> str:
    """A plain-text table of metric differences."""

    def fmt(value: Any) -> str:
        return "missing" if value is None else f"{value:.6g}"

    header = ("metric", "reference", "current", "|diff|", "status")
    body = [(k, fmt(r), fmt(c), fmt(d), "ok" if ok else "DIFF") for k, r, c, d, ok in rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def copy_sources(source: Path, target: Path) -> None:
    """Copy what the pipeline needs (no outputs, caches or engine state) into ``target``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake")
    for name in SOURCE_PATHS:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=ignore)
        elif src.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / name)


def run_stages(workdir: Path, log=sys.stderr) -> None:
    """Run every ``dvc.yaml`` stage command in order inside ``workdir``."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    for name, spec in dvc_stages(workdir).items():
        start = time.monotonic()
        print(f"[repro-check] stage {name}: {spec['cmd']}", file=log, flush=True)
        done = subprocess.run(spec["cmd"], shell=True, cwd=workdir, env=env, check=False)
        if done.returncode != 0:
            raise SegnasError(f"stage {name} failed (exit {done.returncode}) in {workdir}")
        print(f"[repro-check] stage {name} done in {time.monotonic() - start:.1f}s", file=log)


def _check(args: argparse.Namespace) -> int:
    source = Path(args.root).resolve()
    reference_path = Path(args.reference)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="segnas-repro-")).resolve()
    if workdir.exists() and any(workdir.iterdir()):
        raise SegnasError(f"{workdir} is not empty; repro-check runs from scratch in a new dir")
    workdir.mkdir(parents=True, exist_ok=True)
    copy_sources(source, workdir)
    use_config(args.config, workdir / "params.yaml", workdir / "configs")
    run_stages(workdir)
    current = numeric_metrics(workdir)
    if args.update:
        abs_tol = DEFAULT_ABS_TOL if args.abs_tol is None else args.abs_tol
        rel_tol = 0.0 if args.rel_tol is None else args.rel_tol
        reference = {"config": args.config, "abs_tol": abs_tol, "rel_tol": rel_tol}
        write_json(reference_path, {**reference, "metrics": current})
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
    if not args.keep and not bad:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if bad or not rows else 0


def _hash(args: argparse.Namespace) -> int:
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
    check.add_argument("--abs-tol", type=float, help="absolute tolerance (default: reference's)")
    check.add_argument("--rel-tol", type=float, help="relative tolerance (default: reference's)")
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
