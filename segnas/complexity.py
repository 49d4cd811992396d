"""Model complexity: parameters, FLOPs, state-dict size, output stride and inference latency."""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())


def count_flops(model: nn.Module, input_size: tuple[int, int], batch: int = 1) -> int:
    """FLOPs of one forward pass (torch.utils.flop_counter: 2 per multiply-add)."""
    height, width = input_size
    param = next(model.parameters())
    x = torch.zeros(batch, 3, height, width, dtype=param.dtype, device=param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def state_dict_bytes(model: nn.Module) -> int:
    """Size of the serialised state dict (what a checkpoint of the weights occupies on disk)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def output_stride(model: nn.Module, input_size: tuple[int, int]) -> float:
    """Input height divided by the output height for an input of ``input_size``."""
    param = next(model.parameters())
    x = torch.zeros(1, 3, *input_size, dtype=param.dtype, device=param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
    return input_size[0] / out.shape[2]


@dataclass(frozen=True)
class Timing:
    """Median and spread of repeated timed runs, in milliseconds."""

    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int


def time_callable(fn: Callable[[], object], warmup: int = 3, repeats: int = 10) -> Timing:
    """Run ``fn`` ``warmup`` times, then time ``repeats`` runs (CUDA-synchronised)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000.0)
    return Timing(statistics.median(times), min(times), max(times), repeats)


def measure_latency(
    model: nn.Module,
    input_size: tuple[int, int],
    threads: int | None = None,
    warmup: int = 3,
    repeats: int = 10,
    batch: int = 1,
) -> Timing:
    """Inference latency of ``model`` (eval mode, no grad) at ``input_size``."""
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    param = next(model.parameters())
    x = torch.randn(batch, 3, *input_size, dtype=param.dtype, device=param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return time_callable(lambda: model(x), warmup, repeats)
    finally:
        model.train(was_training)
        torch.set_num_threads(previous_threads)
