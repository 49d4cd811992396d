"""Stage ``evaluate``: every trained model -> ``results/<name>/`` (+ ``results/metrics.json``).

Usage: python stages/evaluate.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from segnas.checkpoint import LAST, check_trained_with, load_checkpoint
from segnas.config import load_params, section, setting
from segnas.data.prepared import load_prepared
from segnas.device import keep_freed_memory, resolve_device
from segnas.errors import ArtifactError, ConfigError, SegnasError
from segnas.evaluate import evaluate_checkpoint, pick_checkpoint
from segnas.io import write_json
from segnas.pipeline.paths import MODELS, PREPARED, RESULTS
from segnas.provenance import KEY as PROVENANCE
from segnas.provenance import provenance
from segnas.selection import trained_names
from segnas.trainconfig import train_config_of


def model_names(spec: object) -> list[str]:
    """``all`` -> every ``models/<name>/`` holding a checkpoint, else the listed names."""
    if spec in (None, "all"):
        names = sorted(p.parent.name for p in MODELS.glob(f"*/{LAST}"))
        if not names:
            raise ConfigError(f"evaluate.models: no trained models under {MODELS}/; run train")
        return names
    if not isinstance(spec, list) or not all(isinstance(n, str) for n in spec):
        raise ConfigError(f"evaluate.models must be 'all' or a list of names, got {spec!r}")
    return spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    keep_freed_memory()
    start = time.monotonic()
    try:
        params = load_params(args.params)
        spec = section(params, "evaluate", args.params)
        device = resolve_device(str(setting(params, "device", args.params)))
        if device.type == "cpu":
            torch.set_num_threads(int(spec["threads"]))
        dataset = str(section(params, "train", args.params)["dataset"])
        prepared = load_prepared(PREPARED / dataset)
        train_spec, train_config = train_config_of(params, args.params, prepared)
        trained = trained_names(train_spec["architectures"], int(train_spec["top_k"]))
        names = model_names(spec["models"])
        for name in names:
            if spec["models"] == "all" and name not in trained:
                raise ArtifactError(
                    f"{MODELS / name} is not a model that {args.params} trains (train."
                    f"architectures and train.top_k give {', '.join(trained)}); delete it if "
                    "it is no longer needed, or name the models to evaluate in evaluate.models"
                )
            checkpoint = pick_checkpoint(MODELS / name, spec["checkpoint"])
            meta = load_checkpoint(checkpoint)["meta"]
            check_trained_with(
                checkpoint, meta, train_config, dataset, trained.get(name), args.params
            )
        summary = {}
        for name in names:
            checkpoint = pick_checkpoint(MODELS / name, spec["checkpoint"])
            split = spec["split"] or ("test" if "test" in prepared.splits else "val")
            metrics = evaluate_checkpoint(
                checkpoint,
                prepared,
                split,
                RESULTS / name,
                device,
                input_size=spec["input_size"],
                latency_sizes=spec["latency_sizes"],
                latency_repeats=int(spec["latency_repeats"]),
                onnx=bool(spec["onnx"]),
                onnx_tolerance=float(spec["onnx_tolerance"]),
                qualitative=int(spec["qualitative"]),
                optimized=bool(spec["optimized"]),
                name=name,
            )
            keep = ("miou", "mean_acc", "fwiou", "params", "flops", "latency_ms", "device")
            summary[name] = {key: metrics[key] for key in keep}
            summary[name]["onnx_max_abs_diff"] = metrics.get("onnx", {}).get("max_abs_diff")
            latency = ", ".join(f"{k} {v:.1f} ms" for k, v in metrics["latency_ms"].items())
            onnx = metrics.get("onnx")
            print(
                f"evaluate: {name}: {split} mIoU {100 * metrics['miou']:.2f}% on "
                f"{metrics['num_images']} images; {metrics['params']:,} params; {latency} "
                f"({metrics['device']})"
                + (f"; ONNX max |diff| {onnx['max_abs_diff']:.2e}" if onnx else "")
            )
        write_json(RESULTS / "metrics.json", {**summary, PROVENANCE: provenance(device)})
    except SegnasError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(f"evaluate: {len(summary)} model(s) in {time.monotonic() - start:.1f} s -> {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
