"""Stage ``evaluate``: every trained model -> ``results/<name>/`` (+ ``results/metrics.json``).

Usage: python stages/evaluate.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from segnas.checkpoint import LAST, check_classes, check_trained_with, load_checkpoint
from segnas.config import section, setting
from segnas.data.prepared import PreparedDataset, load_prepared
from segnas.device import keep_freed_memory, resolve_device
from segnas.errors import ArtifactError, ConfigError
from segnas.evaluate import evaluate_checkpoint, pick_checkpoint
from segnas.io import write_json
from segnas.pipeline.entry import DeclaredParams, run_stage
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


def check_models(
    params: DeclaredParams, params_path: str, spec: dict, prepared: PreparedDataset
) -> list[str]:
    """The models to evaluate, each checked before anything is written: one today's train
    params train, trained with them, on the classes the dataset has now."""
    dataset = prepared.root.name
    train_spec, train_config = train_config_of(params, params_path, prepared)
    trained = trained_names(train_spec["architectures"], int(train_spec["top_k"]))
    names = model_names(spec["models"])
    for name in names:
        if spec["models"] == "all" and name not in trained:
            raise ArtifactError(
                f"{MODELS / name} is not a model that {params_path} trains (train."
                f"architectures and train.top_k give {', '.join(trained)}); delete it if "
                "it is no longer needed, or name the models to evaluate in evaluate.models"
            )
        checkpoint = pick_checkpoint(MODELS / name, spec["checkpoint"])
        meta = load_checkpoint(checkpoint)["meta"]
        check_classes(
            checkpoint,
            meta,
            prepared.classes,
            prepared.root,
            f"the dataset was prepared again since training: rerun the train stage "
            f"(dvc repro train), or prepare {dataset} as it was",
        )
        check_trained_with(checkpoint, meta, train_config, dataset, trained.get(name), params_path)
    return names


def evaluate(params: DeclaredParams, args: argparse.Namespace) -> str:
    """Score every model on the test split (val where there is none); the closing line."""
    keep_freed_memory()
    start = time.monotonic()
    spec = section(params, "evaluate", args.params)
    device = resolve_device(str(setting(params, "device", args.params)))
    if device.type == "cpu":
        torch.set_num_threads(int(spec["threads"]))
    prepared = load_prepared(PREPARED / str(section(params, "train", args.params)["dataset"]))
    summary = {}
    for name in check_models(params, args.params, spec, prepared):
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
    return f"evaluate: {len(summary)} model(s) in {time.monotonic() - start:.1f} s -> {RESULTS}"


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", evaluate, argv)


if __name__ == "__main__":
    sys.exit(main())
