"""Stage ``train``: full training of the architectures in params ``train`` -> ``models/<name>/``.

Usage: python stages/train.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

from segnas.config import load_params, section, setting
from segnas.data.prepared import load_prepared
from segnas.device import keep_freed_memory, resolve_device
from segnas.errors import SegnasError
from segnas.final_training import TrainJob, build_datasets, median_frequency_weights, run_train_job
from segnas.pipeline.paths import MODELS, PREPARED, SEARCH
from segnas.search.identity import check_search_matches
from segnas.selection import SizeCap, select_architectures
from segnas.trainconfig import train_config_of
from segnas.workers import jobs_at_once, run_jobs, set_cpu_threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    keep_freed_memory()
    start = time.monotonic()
    try:
        params = load_params(args.params)
        dataset = str(section(params, "train", args.params)["dataset"])
        device = resolve_device(str(setting(params, "device", args.params)))
        prepared = load_prepared(PREPARED / dataset)
        spec, config = train_config_of(params, args.params, prepared)
        if device.type == "cpu":
            set_cpu_threads(int(spec["threads"]))
        val_split = spec["val_split"]
        if val_split and val_split not in prepared.splits:
            val_split = None
        train_splits = spec["train_splits"]
        train_set, val_set = build_datasets(prepared, config, train_splits, val_split)
        class_weights = None
        if config.class_weighting == "median_frequency":
            class_weights = median_frequency_weights(prepared, train_splits)
            pairs = zip(prepared.classes, class_weights, strict=True)
            shown = ", ".join(f"{c} {w:.2f}" for c, w in pairs)
            print(f"train: median-frequency class weights: {shown}")
        max_params = spec["max_params"]
        cap = None
        if max_params is not None:
            cap = SizeCap(
                int(max_params), prepared.num_classes, config.agg_width, config.sep_conv_units
            )
        if int(spec["top_k"]):
            check_search_matches(SEARCH, params, args.params, "train (top_k)")
        archs = select_architectures(spec["architectures"], int(spec["top_k"]), cap=cap)
        jobs = {
            name: TrainJob(
                name,
                genotype,
                train_set,
                val_set,
                prepared.num_classes,
                config,
                MODELS / name,
                device,
                prepared.classes,
                prepared.palette,
                str(spec["dataset"]),
                class_weights,
            )
            for name, genotype in archs.items()
        }
        threads = int(spec["threads"])
        processes = jobs_at_once(device, threads, len(jobs))
        if processes > 1:
            print(f"train: {len(jobs)} models, {processes} at once ({threads} thread(s) each)")
        summaries = run_jobs(run_train_job, jobs, processes, threads)
        for name, summary in summaries.items():
            val_miou = summary["final_val_miou"]
            val = "no val split" if val_miou is None else f"val mIoU {100 * val_miou:.2f}%"
            print(
                f"train: {name}: {summary['epochs']} epochs, {summary['train_seconds']:.0f} s "
                f"training, final loss {summary['final_loss']:.4f}, {val} -> {MODELS / name}"
            )
    except SegnasError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    print(f"train: {len(archs)} model(s) in {time.monotonic() - start:.1f} s on {device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
