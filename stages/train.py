"""Stage ``train``: full training of the architectures in params ``train`` -> ``models/<name>/``.

Usage: python stages/train.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from segnas.config import load_config, load_params, section, setting
from segnas.data.prepared import load_prepared
from segnas.device import keep_freed_memory, resolve_device
from segnas.errors import SegnasError
from segnas.fulltrain import build_datasets, median_frequency_weights, train_model
from segnas.pipeline.paths import MODELS, PREPARED
from segnas.selection import SizeCap, select_architectures
from segnas.trainconfig import TrainConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    keep_freed_memory()
    start = time.monotonic()
    try:
        params = load_params(args.params)
        spec = dict(section(params, "train", args.params))
        stem = section(params, "stem", args.params)
        device = resolve_device(str(setting(params, "device", args.params)))
        if device.type == "cpu":
            torch.set_num_threads(int(spec["threads"]))
            torch.use_deterministic_algorithms(True)
        prepared = load_prepared(PREPARED / str(spec["dataset"]))
        sizes = prepared.index[["height", "width"]].drop_duplicates()
        if spec["input_size"] is None and len(sizes) == 1:
            # one image size: record it, so predict resizes raw images to what was trained
            spec["input_size"] = [int(v) for v in sizes.iloc[0]]
        config = load_config(
            TrainConfig,
            spec,
            "train",
            stem_weights=str(stem["weights"]),
            seed=int(setting(params, "seed", args.params)),
        )
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
        archs = select_architectures(spec["architectures"], int(spec["top_k"]), cap=cap)
        for name, genotype in archs.items():
            out_dir = MODELS / name
            result = train_model(
                genotype,
                train_set,
                val_set,
                prepared.num_classes,
                config,
                out_dir,
                device,
                classes=prepared.classes,
                palette=prepared.palette,
                dataset_name=str(spec["dataset"]),
                live_dir=out_dir / "dvclive",
                log_name=f"train {name}",
                class_weights=class_weights,
            )
            summary = result.summary()
            val_miou = summary["final_val_miou"]
            val = "no val split" if val_miou is None else f"val mIoU {100 * val_miou:.2f}%"
            print(
                f"train: {name}: {summary['epochs']} epochs, {summary['train_seconds']:.0f} s "
                f"training, final loss {summary['final_loss']:.4f}, {val} -> {out_dir}"
            )
    except SegnasError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    print(f"train: {len(archs)} model(s) in {time.monotonic() - start:.1f} s on {device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
