"""Stage ``evaluate``: every trained model -> ``results/<name>/`` (+ ``results/metrics.json``).

Usage: python stages/evaluate.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from segnas.config import section, setting
from segnas.data.prepared import load_prepared
from segnas.device import keep_freed_memory, resolve_device
from segnas.evaluate import evaluate_models
from segnas.pipeline.entry import DeclaredParams, run_stage
from segnas.pipeline.paths import PREPARED, RESULTS


def evaluate(params: DeclaredParams, args: argparse.Namespace) -> str:
    """Score every model on the test split (val where there is none); the closing line."""
    keep_freed_memory()
    start = time.monotonic()
    spec = section(params, "evaluate", args.params)
    device = resolve_device(str(setting(params, "device", args.params)))
    if device.type == "cpu":
        torch.set_num_threads(int(spec["threads"]))
    prepared = load_prepared(PREPARED / str(section(params, "train", args.params)["dataset"]))
    summary = evaluate_models(params, args.params, spec, prepared, device)
    return f"evaluate: {len(summary)} model(s) in {time.monotonic() - start:.1f} s -> {RESULTS}"


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", evaluate, argv)


if __name__ == "__main__":
    sys.exit(main())
