"""Stage ``train``: full training of the architectures in params ``train`` -> ``models/<name>/``.

Usage: python stages/train.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

from segnas.config import section, setting
from segnas.data.prepared import load_prepared
from segnas.device import keep_freed_memory, resolve_device
from segnas.final_training import plan_train_jobs, run_train_job
from segnas.pipeline.entry import DeclaredParams, run_stage
from segnas.pipeline.paths import MODELS, PREPARED
from segnas.workers import jobs_at_once, run_jobs, set_cpu_threads


def train(params: DeclaredParams, args: argparse.Namespace) -> str:
    """Train every planned model, side by side where the cores allow; the closing line."""
    keep_freed_memory()
    start = time.monotonic()
    spec = section(params, "train", args.params)
    device = resolve_device(str(setting(params, "device", args.params)))
    if device.type == "cpu":
        set_cpu_threads(int(spec["threads"]))
    prepared = load_prepared(PREPARED / str(spec["dataset"]))
    jobs, spec = plan_train_jobs(params, args.params, prepared, device)
    threads = int(spec["threads"])
    processes = jobs_at_once(device, threads, len(jobs))
    if processes > 1:
        print(f"train: {len(jobs)} models, {processes} at once ({threads} thread(s) each)")
    for name, summary in run_jobs(run_train_job, jobs, processes, threads).items():
        val_miou = summary["final_val_miou"]
        val = "no val split" if val_miou is None else f"val mIoU {100 * val_miou:.2f}%"
        print(
            f"train: {name}: {summary['epochs']} epochs, {summary['train_seconds']:.0f} s "
            f"training, final loss {summary['final_loss']:.4f}, {val} -> {MODELS / name}"
        )
    return f"train: {len(jobs)} model(s) in {time.monotonic() - start:.1f} s on {device}"


def main(argv: list[str] | None = None) -> int:
    return run_stage("train", train, argv)


if __name__ == "__main__":
    sys.exit(main())
