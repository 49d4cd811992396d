"""Screen search-reward recipes on the reward audit's *selection* architectures (never the
held-out ones): each recipe is the project's params plus a few overrides, audited for
repeatability and cost without final trainings, then tabulated side by side.

    python scripts/reward_screen.py --recipes docs/results/reward-audit-camvid-cpu/screen.yaml \
        --band docs/results/reward-audit-camvid-cpu/band.txt --out screen

Run from a project whose data/prepared, data/split and cache/stem are built from
``--params``. A recipe that overrides ``split`` or ``cache_stem`` gets a project of its own
under ``<out>/<recipe>/project`` (the code and prepared data linked, split and cache_stem run
there). Each recipe's audit lands in ``<out>/<recipe>/audit`` and resumes after a kill; the
table goes to ``<out>/screen.md`` and ``<out>/screen.json``.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
from pathlib import Path

import yaml

from segnas.audit.plan import AuditLayout
from segnas.audit.summary import write_outputs
from segnas.config import load_params, validate_params
from segnas.errors import SegnasError
from segnas.io import read_yaml, write_json, write_text

OWN_PROJECT = ("split", "cache_stem")
LINKED = ("segnas", "stages", "configs")


def apply_overrides(params: dict, overrides: dict) -> dict:
    """``params`` with each ``dotted.key: value`` of ``overrides`` set."""
    params = copy.deepcopy(params)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = params
        for key in parents:
            if key not in node:
                raise KeyError(f"{dotted}: no section {key!r}")
            node = node[key]
        if leaf not in node:
            raise KeyError(f"{dotted}: no key {leaf!r}")
        node[leaf] = value
    return params


def _project(root: Path, out: Path, params: dict, overrides: dict) -> Path:
    """The project the recipe runs in: ``root``, or its own where the data change."""
    if not any(key.split(".")[0] in OWN_PROJECT for key in overrides):
        return root
    project = out / "project"
    project.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        if not (project / name).exists():
            (project / name).symlink_to(root.resolve() / name)
    prepared = project / "data" / "prepared"
    if not prepared.exists():
        prepared.parent.mkdir(parents=True, exist_ok=True)
        prepared.symlink_to((root / "data" / "prepared").resolve())
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if not (project / "cache" / "stem" / "header.json").is_file():
        for stage in OWN_PROJECT:
            subprocess.run([sys.executable, f"stages/{stage}.py"], cwd=project, check=True)
    return project


def run_recipe(root: Path, out: Path, name: str, overrides: dict, args: argparse.Namespace) -> Path:
    """Audit one recipe on the selection architectures; its audit directory."""
    params = apply_overrides(load_params(root / args.params), overrides)
    validate_params(params, f"recipe {name}")
    recipe_dir = out / name
    recipe_dir.mkdir(parents=True, exist_ok=True)
    params_path = recipe_dir / "params.yaml"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    project = _project(root, recipe_dir, params, overrides)
    audit = (recipe_dir / "audit").resolve()
    command = [
        sys.executable, "-m", "segnas.cli", "reward-audit",
        "--params", str(params_path.resolve()),
        "--out", str(audit),
        "--role", "selection",
        "--per-group", str(args.per_group),
        "--reward-seeds", str(args.reward_seeds),
        "--workers", str(args.workers),
        "--band", str(Path(args.band).resolve()),
        "--no-final",
    ]  # fmt: skip
    subprocess.run(command, cwd=project, check=True, env=dict(os.environ))
    return audit


def screen_row(name: str, overrides: dict, audit: Path) -> dict:
    """One recipe's repeatability, bias and cost."""
    summary = write_outputs(AuditLayout(audit))
    repeat = summary["repeatability"]
    return {
        "recipe": name,
        "overrides": overrides,
        "icc": repeat["icc"],
        "icc_ci": repeat["icc_ci"],
        "seed_sd": repeat["seed_sd"],
        "between_sd": repeat["between_sd"],
        "params_vs_reward": summary["fidelity"]["params_vs_reward"],
        "core_s_mean": summary["cost"]["core_s_mean"],
        "progress": summary["progress"]["rewards"],
    }


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def screen_table(rows: list[dict]) -> str:
    """The screen as a markdown table."""
    lines = [
        "| recipe | overrides | ICC pooled [95 % CI] | ICC uniform | ICC band | seed sd | "
        "between sd | rho(params, reward) | core-s mean | rewards |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        icc, ci = row["icc"], row["icc_ci"].get("pooled", {})
        overrides = ", ".join(f"{k}={v}" for k, v in row["overrides"].items()) or "(none)"
        lines.append(
            f"| {row['recipe']} | {overrides} | {_fmt(icc.get('pooled'))} "
            f"[{_fmt(ci.get('low'))}, {_fmt(ci.get('high'))}] | {_fmt(icc.get('uniform'))} | "
            f"{_fmt(icc.get('controller_band'))} | {_fmt(row['seed_sd'])} | "
            f"{_fmt(row['between_sd'])} | {_fmt(row['params_vs_reward'])} | "
            f"{_fmt(row['core_s_mean'])} | {row['progress']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", required=True, help="YAML: recipe name -> overrides")
    parser.add_argument("--band", required=True, help="the controller band list")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--per-group", type=int, default=8)
    parser.add_argument("--reward-seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="run only these recipes (default all)")
    parser.add_argument(
        "--table-only", action="store_true", help="only rewrite the table from the audits there"
    )
    args = parser.parse_args(argv)
    try:
        recipes = read_yaml(args.recipes)["recipes"]
    except (OSError, KeyError, SegnasError) as exc:
        print(f"reward_screen: {args.recipes}: {exc}", file=sys.stderr)
        return 2
    root = Path.cwd()
    rows = []
    for name, overrides in recipes.items():
        overrides = overrides or {}
        if args.table_only or (args.only and name not in args.only):
            audit = (args.out / name / "audit").resolve()
            if not (audit / "plan.json").is_file():
                continue
        else:
            try:
                audit = run_recipe(root, args.out, name, overrides, args)
            except (KeyError, SegnasError) as exc:
                print(f"reward_screen: recipe {name}: {exc}", file=sys.stderr)
                return 2
        rows.append(screen_row(name, overrides, audit))
        write_json(args.out / "screen.json", rows)
        write_text(args.out / "screen.md", screen_table(rows))
    print(screen_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
