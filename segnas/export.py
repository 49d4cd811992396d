"""ONNX export of a trained network and an onnxruntime check against PyTorch."""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ArtifactError
from .io import atomic_path

OPSET = 18


@dataclass(frozen=True)
class OnnxCheck:
    """How far onnxruntime's logits are from PyTorch's on a seeded random input."""

    path: Path
    input_size: tuple[int, int]
    max_abs_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "input_size": list(self.input_size),
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "ok": self.ok,
        }


def export_onnx(
    model: nn.Module, path: str | Path, input_size: tuple[int, int], opset: int = OPSET
) -> Path:
    """Export ``model`` (eval mode, CPU, float32) for a fixed (1, 3, H, W) input; atomic write.

    Input ``image`` (ImageNet-normalised RGB), output ``logits`` at the decoder's resolution.
    """
    model = model.to("cpu").float().eval()
    example = torch.zeros(1, 3, *input_size)
    path = Path(path)
    with atomic_path(path) as tmp:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=["image"],
                output_names=["logits"],
                opset_version=opset,
            )
        program.save(str(tmp))
        _strip_source_locations(tmp)
    return path


def _strip_source_locations(path: Path) -> None:
    """Drop per-node metadata (stack traces with absolute source paths) so that exports from
    two checkouts are byte-identical."""
    import onnx

    proto = onnx.load(str(path))
    graphs = [proto.graph, *(f for f in proto.functions)]
    for graph in graphs:
        for node in graph.node:
            del node.metadata_props[:]
    onnx.save(proto, str(path))


def onnx_max_abs_diff(
    model: nn.Module, path: str | Path, input_size: tuple[int, int], seed: int = 0
) -> float:
    """Max |onnxruntime - PyTorch| over the logits for a seeded standard-normal input."""
    import onnxruntime as ort

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, *input_size, generator=generator)
    model = model.to("cpu").float().eval()
    with torch.no_grad():
        expected = model(x).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ArtifactError(f"onnxruntime cannot load {path} ({exc}); re-export it") from exc
    (actual,) = session.run(["logits"], {"image": x.numpy()})
    if actual.shape != expected.shape:
        raise ArtifactError(f"{path}: ONNX output shape {actual.shape} != {expected.shape}")
    return float(np.abs(actual - expected).max())


def export_and_check(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int],
    tolerance: float = 1e-3,
    seed: int = 0,
    reference: nn.Module | None = None,
) -> OnnxCheck:
    """Export ``model`` to ``path`` and compare onnxruntime with PyTorch's ``reference`` (by
    default ``model`` itself; e.g. the trained network when ``model`` is its inference copy)."""
    path = export_onnx(model, path, input_size)
    reference = model if reference is None else reference
    diff = onnx_max_abs_diff(reference, path, input_size, seed)
    return OnnxCheck(path, tuple(input_size), diff, tolerance)
