"""Search throughput: architectures per hour with 1 and 2 local workers, and where an
evaluation's wall time goes (per-process overhead vs setup, phase 1, phase 2, validation).

Run from a project directory whose data/prepared, data/split and cache/stem exist (e.g. after
`segnas config use camvid-cpu && dvc repro cache_stem`):

    python bench/bench_search.py --params params.yaml --archs 4 --workers 1 2

It writes search/ of a short search (rounds = 1, B = --archs) once per worker count, so run it
in a scratch copy of the project. Figures and the machine's load go in docs/search.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "stages" / "search.py"
PHASES = ("setup", "phase1", "phase2", "validation")


def _probe_overhead(params: Path) -> dict:
    """Process start + imports, and opening the data (cache, stem, meta-val) in a fresh process."""
    code = (
        "import sys, time\n"
        "t0 = time.perf_counter()\n"
        "import torch\n"
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('search_stage', {str(STAGE)!r})\n"
        "stage = importlib.util.module_from_spec(spec); spec.loader.exec_module(stage)\n"
        "t1 = time.perf_counter()\n"
        f"config, evaluator, _ = stage._setup({str(params)!r})\n"
        "evaluator.build()\n"
        "t2 = time.perf_counter()\n"
        "print(t1 - t0, t2 - t1)\n"
    )
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    total = time.perf_counter() - start
    imports, data_open = float(out[0]), float(out[1])
    return {
        "process_start_s": total - imports - data_open,
        "imports_s": imports,
        "data_open_s": data_open,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(params: Path, workers: int) -> tuple[float, float, list[dict]]:
    """Wall and CPU seconds of a whole local search (all its processes), and its timings."""
    shutil.rmtree("search", ignore_errors=True)
    start, cpu_start = time.perf_counter(), _children_cpu()
    subprocess.run(
        [sys.executable, str(STAGE), "--params", str(params), "run", "--workers", str(workers)],
        check=True,
    )
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
    with open("search/timings.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return wall, cpu, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--archs", type=int, default=4, help="architectures per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default="bench_search.json")
    args = parser.parse_args(argv)
    params = yaml.safe_load(Path(args.params).read_text(encoding="utf-8"))
    params["search"].update({"rounds": 1, "archs_per_round": args.archs})
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, dir=".") as handle:
        yaml.safe_dump(params, handle, sort_keys=False)
        bench_params = Path(handle.name)
    report: dict = {"archs": args.archs, "load_average": os.getloadavg(), "runs": []}
    try:
        report["overhead_per_process"] = _probe_overhead(bench_params)
        for workers in args.workers:
            wall, cpu, rows = _run(bench_params, workers)
            phases = {p: statistics.mean(float(r[f"seconds_{p}"]) for r in rows) for p in PHASES}
            report["runs"].append(
                {
                    "workers": workers,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "archs_per_hour": args.archs / wall * 3600,
                    # what `workers` idle cores would give: each evaluation is single-threaded
                    "archs_per_hour_idle_estimate": workers * 3600 / (cpu / args.archs),
                    "mean_eval_s": statistics.mean(float(r["seconds_total"]) for r in rows),
                    "mean_eval_cpu_s": statistics.mean(float(r["seconds_cpu"]) for r in rows),
                    "mean_phase_s": phases,
                }
            )
    finally:
        bench_params.unlink(missing_ok=True)
    report["load_average_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    overhead = report["overhead_per_process"]
    print(
        f"per process: start {overhead['process_start_s']:.1f} s, imports "
        f"{overhead['imports_s']:.1f} s, data open {overhead['data_open_s']:.1f} s"
    )
    for run in report["runs"]:
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in run["mean_phase_s"].items())
        print(
            f"workers {run['workers']}: {run['archs_per_hour']:.1f} archs/hour measured, "
            f"{run['archs_per_hour_idle_estimate']:.1f} on idle cores (wall {run['wall_s']:.0f} s, "
            f"CPU {run['cpu_s']:.0f} s; per evaluation {run['mean_eval_s']:.1f} s wall, "
            f"{run['mean_eval_cpu_s']:.1f} s CPU: {phases})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
