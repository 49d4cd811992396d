"""Evaluation of trained models: mIoU and per-class IoU at label size, model facts, ONNX.

Predictions are upsampled bilinearly to the label size before the argmax, so scores are at
the dataset's resolution whatever the input size. Facts: parameters, FLOPs and latency at
the requested sizes (2048x1024 and 480x360 by default) on a named device, size on disk.
The evaluate stage's work (``evaluate_models``) checks every model against today's train
params first (``check_models``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from .checkpoint import (
    BEST,
    LAST,
    check_classes,
    check_trained_with,
    load_checkpoint,
    load_trained,
)
from .complexity import count_flops, count_params, measure_latency, state_dict_bytes
from .data.dataset import SegmentationDataset, read_pair
from .data.prepared import PreparedDataset
from .device import device_name
from .errors import ArtifactError, ConfigError
from .export import OnnxCheck, export_and_check
from .inference import OnnxRuntimeModel
from .io import atomic_path, write_json, write_text
from .pipeline.paths import MODELS, RESULTS
from .predict import colourise, maybe_optimize, predict_labels
from .progress import Progress
from .provenance import KEY as PROVENANCE
from .provenance import provenance
from .scoring import ResizeInput, score_model
from .selection import trained_names
from .trainconfig import train_config_of

DEFAULT_LATENCY_SIZES = ((1024, 2048), (360, 480))
# what results/metrics.json keeps of each model's metrics (besides its ONNX max |diff|)
SUMMARY_KEYS = ("miou", "mean_acc", "fwiou", "params", "flops", "latency_ms", "device")


def pick_checkpoint(model_dir: str | Path, which: str = "best") -> Path:
    """``best.pt`` when asked for and present, else ``last.pt``."""
    model_dir = Path(model_dir)
    if which == "best" and (model_dir / BEST).exists():
        return model_dir / BEST
    return model_dir / LAST


def training_history(checkpoint: str | Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-epoch history of the whole training run that wrote ``checkpoint`` (``meta`` as
    ``load_trained`` returns it).

    ``best.pt`` is saved at its best epoch, so its own history stops there; the run's full
    history is in the ``last.pt`` beside it (when that is from the same architecture).
    """
    checkpoint = Path(checkpoint)
    last = checkpoint.with_name(LAST)
    if checkpoint.name != LAST and last.is_file():
        payload = load_checkpoint(last)
        if payload["meta"].get("genotype_hash") == meta.get("genotype_hash"):
            return payload["state"]["history"]
    return meta["state"]["history"]


@dataclass
class Evaluation:
    """Scores of one model on one split."""

    split: str
    num_images: int
    scores: dict[str, Any]
    classes: list[str]

    def per_class_rows(self) -> list[tuple[str, float | None]]:
        """(class, IoU) pairs; None where the class is absent from the split's labels."""
        values = self.scores["per_class_iou"]
        values = [None if math.isnan(v) else v for v in values]
        return list(zip(self.classes, values, strict=True))

    def per_class_csv(self) -> str:
        lines = ["class,iou"]
        lines += [
            f"{name},{'' if iou is None else f'{iou:.6f}'}" for name, iou in self.per_class_rows()
        ]
        return "\n".join(lines) + "\n"


def evaluate_split(
    model: nn.Module,
    prepared: PreparedDataset,
    split: str,
    input_size: Sequence[int] | None,
    device: torch.device,
    channels_last: bool = False,
    log_name: str = "evaluate",
) -> Evaluation:
    """mIoU and per-class IoU of ``model`` on ``split`` (images resized to ``input_size``)."""
    ids = prepared.ids(split)
    dataset = SegmentationDataset(prepared, ids, ResizeInput(input_size))
    progress = Progress(log_name, len(ids))
    confusion = score_model(
        model, dataset, prepared.num_classes, device, channels_last, progress=progress
    )
    return Evaluation(split, len(ids), confusion.scores(), list(prepared.classes))


def model_facts(
    model: nn.Module,
    device: torch.device,
    sizes: Sequence[Sequence[int]] = DEFAULT_LATENCY_SIZES,
    warmup: int = 2,
    repeats: int = 5,
    timed: nn.Module | None = None,
) -> dict[str, Any]:
    """Parameters, FLOPs and median latency (batch 1) at each (H, W) of ``sizes``.

    Counts are of ``model`` (the trained network); latency is of ``timed`` (e.g. its optimised
    inference copy) when given.
    """
    timed = timed if timed is not None else model
    facts: dict[str, Any] = {
        "params": count_params(model),
        "decoder_params": count_params(model.decoder),
        "weights_bytes": state_dict_bytes(model),
        "device": device_name(device),
        "flops": {},
        "latency_ms": {},
    }
    for height, width in sizes:
        key = f"{width}x{height}"
        facts["flops"][key] = count_flops(model, (int(height), int(width)))
        timing = measure_latency(
            timed, (int(height), int(width)), None, min(warmup, repeats), repeats
        )
        facts["latency_ms"][key] = round(timing.median_ms, 3)
    return facts


def save_qualitative(
    model: nn.Module,
    prepared: PreparedDataset,
    ids: Sequence[str],
    input_size: Sequence[int] | None,
    device: torch.device,
    out_dir: Path,
) -> list[Path]:
    """One ``image | ground truth | prediction`` strip per id (ignored pixels black)."""
    written = []
    for image_id in ids:
        image, label = read_pair(prepared, image_id)
        prediction = predict_labels(model, image, input_size, device)
        gap = np.full((image.height, 4, 3), 255, dtype=np.uint8)
        strip = np.concatenate(
            [
                np.asarray(image),
                gap,
                colourise(np.asarray(label), prepared.palette),
                gap,
                colourise(prediction, prepared.palette),
            ],
            axis=1,
        )
        path = out_dir / f"{image_id}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(strip).save(tmp, format="PNG")
        written.append(path)
    return written


def export_for_inference(
    model: nn.Module,
    fast: nn.Module,
    path: Path,
    input_size: tuple[int, int],
    tolerance: float,
) -> OnnxCheck:
    """Export the network that inference runs to ``path``, checked against ``model``'s logits.

    When ``fast`` runs ONNX Runtime, the export is of its BatchNorm-folded network and ``fast``
    runs batch-1 inputs of ``input_size`` with that very file, so each model is exported once
    for its evaluation; otherwise ``model`` itself is exported.
    """
    if not isinstance(fast, OnnxRuntimeModel):
        return export_and_check(model, path, input_size, tolerance)
    check = export_and_check(fast.net, path, input_size, tolerance, reference=model)
    fast.add_session(path.read_bytes(), (1, 3, *input_size))
    return check


def evaluate_checkpoint(
    checkpoint: str | Path,
    prepared: PreparedDataset,
    split: str,
    out_dir: str | Path,
    device: torch.device,
    input_size: Sequence[int] | None = None,
    latency_sizes: Sequence[Sequence[int]] = DEFAULT_LATENCY_SIZES,
    latency_repeats: int = 5,
    onnx: bool = True,
    onnx_tolerance: float = 1e-3,
    qualitative: int = 3,
    optimized: bool = True,
    name: str = "",
) -> dict[str, Any]:
    """Evaluate one checkpoint; writes ``metrics.json``, ``per_class_iou.csv``, ``model.onnx``
    and ``qualitative/`` under ``out_dir`` and returns the metrics."""
    out_dir = Path(out_dir)
    checkpoint = Path(checkpoint)
    model, meta = load_trained(checkpoint, device)
    check_classes(
        checkpoint,
        meta,
        prepared.classes,
        prepared.root,
        f"the dataset was prepared again since training: rerun the train stage for "
        f"{checkpoint.parent} (dvc repro train), or prepare the dataset as it was",
    )
    size = tuple(input_size) if input_size else meta["config"].get("input_size")
    size = tuple(size) if size else None
    fast, path_name = maybe_optimize(model, optimized)
    check = None
    if onnx:
        first = prepared.index[prepared.index["id"] == prepared.ids(split)[0]].iloc[0]
        onnx_size = size or (int(first["height"]), int(first["width"]))
        check = export_for_inference(model, fast, out_dir / "model.onnx", onnx_size, onnx_tolerance)
        if not check.ok:
            check.path.unlink(missing_ok=True)
            raise ArtifactError(
                f"{checkpoint}: its ONNX export differs from PyTorch by max |diff| "
                f"{check.max_abs_diff:.3g}, more than evaluate.onnx_tolerance {onnx_tolerance:g}; "
                f"{check.path} was not kept. Raise the tolerance, or set evaluate.onnx: false "
                "to skip the export"
            )
    evaluation = evaluate_split(fast, prepared, split, size, device, log_name=f"evaluate {name}")
    facts = model_facts(model, device, latency_sizes, repeats=latency_repeats, timed=fast)
    metrics: dict[str, Any] = {
        "name": name,
        "checkpoint": str(checkpoint),
        "genotype": meta["genotype"],
        "genotype_hash": meta["genotype_hash"],
        "dataset": meta["dataset"],
        "split": split,
        "num_images": evaluation.num_images,
        "input_size": list(size) if size else None,
        "inference_path": path_name,
        "miou": evaluation.scores["miou"],
        "mean_acc": evaluation.scores["mean_acc"],
        "fwiou": evaluation.scores["fwiou"],
        "pixel_acc": evaluation.scores["pixel_acc"],
        "classes": evaluation.classes,
        "per_class_iou": dict(evaluation.per_class_rows()),
        "checkpoint_epoch": meta["state"]["epoch"],
        "history": training_history(checkpoint, meta),
        **facts,
    }
    if check is not None:
        metrics["onnx"] = check.to_dict()
    if qualitative:
        ids = prepared.ids(split)
        step = max(1, len(ids) // qualitative)
        chosen = ids[::step][:qualitative]
        files = save_qualitative(fast, prepared, chosen, size, device, out_dir / "qualitative")
        metrics["qualitative"] = [str(p) for p in files]
    write_text(out_dir / "per_class_iou.csv", evaluation.per_class_csv())
    write_json(out_dir / "metrics.json", metrics)
    return metrics


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
    params: dict, params_path: str, spec: dict[str, Any], prepared: PreparedDataset
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


def evaluate_models(
    params: dict,
    params_path: str,
    spec: dict[str, Any],
    prepared: PreparedDataset,
    device: torch.device,
) -> dict[str, dict[str, Any]]:
    """The evaluate stage's work: every model of ``check_models`` scored on ``spec``'s split
    (test, else val) into ``results/<name>/`` with a line each, their summary written to
    ``results/metrics.json`` with the provenance; returns the summary per model."""
    summary = {}
    for name in check_models(params, params_path, spec, prepared):
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
        summary[name] = {key: metrics[key] for key in SUMMARY_KEYS}
        summary[name]["onnx_max_abs_diff"] = metrics.get("onnx", {}).get("max_abs_diff")
        print(_evaluated_line(name, split, metrics))
    write_json(RESULTS / "metrics.json", {**summary, PROVENANCE: provenance(device)})
    return summary


def _evaluated_line(name: str, split: str, metrics: dict[str, Any]) -> str:
    latency = ", ".join(f"{k} {v:.1f} ms" for k, v in metrics["latency_ms"].items())
    onnx = metrics.get("onnx")
    onnx_diff = f"; ONNX max |diff| {onnx['max_abs_diff']:.2e}" if onnx else ""
    return (
        f"evaluate: {name}: {split} mIoU {100 * metrics['miou']:.2f}% on "
        f"{metrics['num_images']} images; {metrics['params']:,} params; {latency} "
        f"({metrics['device']}){onnx_diff}"
    )
