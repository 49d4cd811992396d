"""Benchmarks against the machine's compute floor.

The floor of a network at a given input size is its counted FLOPs (``torch.utils.flop_counter``,
2 per multiply-add) divided by the dense float32 matrix-multiply rate measured in the same
process with the same thread count. Model and GEMM runs are interleaved (one GEMM before each
timed model run) so that both see the same machine load; every figure is a median over
repeats with its min-max spread.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from .complexity import Timing, count_flops
from .device import device_name
from .inference import optimize_for_inference
from .loss import segmentation_loss
from .model import FINAL_CONFIG, SEARCH_CONFIG, build_model
from .published import resolve_genotype

GEMM_SIZE = 2048


@dataclass(frozen=True)
class BenchResult:
    """One benchmarked configuration, with the floor measured in the same run."""

    kind: str
    arch: str
    path: str
    size: tuple[int, int]
    batch: int
    threads: int
    device: str
    flops: int
    gemm_flops_per_s: float
    timing: Timing
    gemm_timing: Timing

    @property
    def floor_ms(self) -> float:
        """Time the counted FLOPs would take at the measured GEMM rate."""
        return self.flops / self.gemm_flops_per_s * 1000.0

    @property
    def ratio(self) -> float:
        """Median time divided by the floor."""
        return self.timing.median_ms / self.floor_ms

    @property
    def ratio_range(self) -> tuple[float, float]:
        """Min and max time divided by the floor."""
        return self.timing.min_ms / self.floor_ms, self.timing.max_ms / self.floor_ms

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "kind": self.kind,
            "arch": self.arch,
            "path": self.path,
            "size": list(self.size),
            "batch": self.batch,
            "threads": self.threads,
            "device": self.device,
            "flops": self.flops,
            "gemm_gflops_per_s": self.gemm_flops_per_s / 1e9,
            "floor_ms": self.floor_ms,
            "median_ms": self.timing.median_ms,
            "min_ms": self.timing.min_ms,
            "max_ms": self.timing.max_ms,
            "repeats": self.timing.repeats,
            "ratio": self.ratio,
            "ratio_min": self.ratio_range[0],
            "ratio_max": self.ratio_range[1],
        }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timing(samples_s: Sequence[float]) -> Timing:
    ms = [s * 1000.0 for s in samples_s]
    return Timing(statistics.median(ms), min(ms), max(ms), len(ms))


def gemm_rate(
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    size: int = GEMM_SIZE,
    warmup: int = 2,
    repeats: int = 5,
) -> tuple[float, Timing]:
    """FLOP/s of a ``size``-square matrix multiply (median of ``repeats``) and its timing."""
    gemm = _gemm_callable(torch.device(device), dtype, size)
    for _ in range(warmup):
        gemm()
    samples = [_timed(gemm, torch.device(device)) for _ in range(repeats)]
    timing = _timing(samples)
    return 2.0 * size**3 / (timing.median_ms / 1000.0), timing


def _gemm_callable(device: torch.device, dtype: torch.dtype, size: int) -> Callable[[], object]:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    return lambda: torch.mm(a, b, out=out)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def time_against_floor(
    fn: Callable[[], object],
    device: torch.device | str = "cpu",
    gemm_dtype: torch.dtype = torch.float32,
    gemm_size: int = GEMM_SIZE,
    warmup: int = 3,
    repeats: int = 10,
) -> tuple[Timing, Timing, float]:
    """Time ``fn`` and a GEMM alternately; returns (fn timing, GEMM timing, GEMM FLOP/s)."""
    device = torch.device(device)
    gemm = _gemm_callable(device, gemm_dtype, gemm_size)
    for _ in range(warmup):
        gemm()
        fn()
    _sync(device)
    fn_samples, gemm_samples = [], []
    for _ in range(repeats):
        gemm_samples.append(_timed(gemm, device))
        fn_samples.append(_timed(fn, device))
    gemm_timing = _timing(gemm_samples)
    return _timing(fn_samples), gemm_timing, 2.0 * gemm_size**3 / (gemm_timing.median_ms / 1000.0)


@contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads (None: leave as is)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def calibrate_batchnorm(
    model: nn.Module, size: tuple[int, int] = (128, 160), batches: int = 3, seed: int = 0
) -> nn.Module:
    """Set every BatchNorm's running statistics from a few seeded random batches.

    A randomly initialised network in eval mode (running mean 0, variance 1) shrinks its
    activations layer after layer into float32 denormals, which run 10-100x slower on x86 and
    would make a benchmark measure an artefact no trained network has. Calibrating the
    statistics keeps activations at unit scale, as after training. Returns ``model`` in eval
    mode.
    """
    generator = torch.Generator().manual_seed(seed)
    param = next(model.parameters())
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            x = torch.randn(2, 3, *size, generator=generator)
            model(x.to(device=param.device, dtype=param.dtype))
    return model.eval()


def bench_model(arch: str, search: bool = False, num_classes: int = 19, seed: int = 0) -> nn.Module:
    """The network ``arch`` (name or genotype text) with seeded weights and calibrated BN."""
    widths = SEARCH_CONFIG if search else FINAL_CONFIG
    model = build_model(resolve_genotype(arch), num_classes=num_classes, seed=seed, **widths)
    return calibrate_batchnorm(model, seed=seed)


LATENCY_PATHS = ("plain", "auto", "eager", "onnxruntime")


def bench_latency(
    model: nn.Module,
    arch: str,
    size: tuple[int, int],
    batch: int = 1,
    path: str = "auto",
    device: torch.device | str = "cpu",
    warmup: int = 3,
    repeats: int = 10,
) -> BenchResult:
    """Inference latency of ``model`` through ``path`` against the GEMM floor.

    ``path`` is ``plain`` (the model as built, eval mode) or an ``optimize_for_inference``
    backend (``auto``, ``eager``, ``onnxruntime``). On CUDA the optimised path runs
    channels_last under float16 autocast and the floor is a float16 GEMM; on CPU everything
    is float32.
    """
    if path not in LATENCY_PATHS:
        raise ValueError(f"latency path {path!r} is not one of {', '.join(LATENCY_PATHS)}")
    device = torch.device(device)
    flops = count_flops(model, size, batch)
    model = model.to(device).eval()
    net = model if path == "plain" else optimize_for_inference(model, backend=path)
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
    amp = device.type == "cuda" and path != "plain"
    gemm_dtype = torch.float16 if amp else torch.float32

    def run() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device.type, torch.float16, enabled=amp):
            return net(x)

    timing, gemm_timing, rate = time_against_floor(
        run, device, gemm_dtype, warmup=warmup, repeats=repeats
    )
    name = getattr(net, "backend", "plain")
    return BenchResult(
        "latency",
        arch,
        "amp+channels_last" if amp else name,
        size,
        batch,
        torch.get_num_threads(),
        device_name(device),
        flops,
        rate,
        timing,
        gemm_timing,
    )


def make_train_step(
    model: nn.Module,
    size: tuple[int, int],
    batch: int,
    num_classes: int,
    channels_last: bool = True,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> Callable[[], torch.Tensor]:
    """A closure doing one Adam step (forward, loss, backward, update) on a fixed random batch.

    Adam is what the search uses; its update is elementwise and cheap next to the convolutions.
    The logits are made NCHW-contiguous before the loss: upsampling and the class-wise
    log-softmax of a channels_last map cost about 20% more, forward and backward.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, *size, generator=generator).to(device)
    labels = torch.randint(0, num_classes, (batch, *size), generator=generator).to(device)
    model = model.to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = segmentation_loss(model(images).contiguous(), labels)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def _conv_backward_flops(
    grad_out_shape: list[int],
    x_shape: list[int],
    w_shape: list[int],
    _bias: object,
    _stride: object,
    _padding: object,
    _dilation: object,
    transposed: bool,
    _output_padding: object,
    _groups: int,
    output_mask: list[bool],
    out_shape: object = None,
    **kwargs: object,
) -> int:
    """Convolution backward FLOPs: one forward's worth per requested gradient (input, weight).

    ``torch.utils.flop_counter``'s own formula ignores ``groups`` for the weight gradient and
    so counts a depthwise convolution's backward ``channels`` times too high (65x forward for a
    64-channel 3x3 depthwise conv instead of 2x), which would make a training floor
    meaningless for these networks.
    """
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def train_step_flops(model: nn.Module, size: tuple[int, int], batch: int, num_classes: int) -> int:
    """Counted FLOPs of one forward + backward pass (the optimizer's elementwise work is free).

    Convolution backward passes are counted as one forward per computed gradient (see
    ``_conv_backward_flops``); the first layer needs no input gradient.
    """
    param = next(model.parameters())
    images = torch.zeros(batch, 3, *size, device=param.device)
    labels = torch.zeros(batch, *size, dtype=torch.long, device=param.device)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.train()
    try:
        mapping = {torch.ops.aten.convolution_backward: _conv_backward_flops}
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            segmentation_loss(model(images).contiguous(), labels).backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.load_state_dict(state)
        model.train(was_training)
    return int(counter.get_total_flops())


def bench_train(
    model: nn.Module,
    arch: str,
    size: tuple[int, int],
    batch: int,
    num_classes: int = 19,
    plain: bool = False,
    device: torch.device | str = "cpu",
    warmup: int = 2,
    repeats: int = 5,
) -> BenchResult:
    """Training-step time (forward, loss, backward, Adam update) against the GEMM floor."""
    device = torch.device(device)
    flops = train_step_flops(model, size, batch, num_classes)
    step = make_train_step(model, size, batch, num_classes, not plain, device)
    timing, gemm_timing, rate = time_against_floor(step, device, warmup=warmup, repeats=repeats)
    return BenchResult(
        "train",
        arch,
        "plain" if plain else "channels_last",
        size,
        batch,
        torch.get_num_threads(),
        device_name(device),
        flops,
        rate,
        timing,
        gemm_timing,
    )


def format_table(results: Sequence[BenchResult]) -> str:
    """A Markdown table: FLOPs, floor, time (median, min-max), ratio to the floor."""
    lines = [
        "| kind | arch | path | size HxW | batch | GFLOPs | GEMM GFLOP/s | floor ms "
        "| time ms (median) | min-max ms | ratio (min-max) |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        low, high = r.ratio_range
        lines.append(
            f"| {r.kind} | {r.arch} | {r.path} | {r.size[0]}x{r.size[1]} | {r.batch} "
            f"| {r.flops / 1e9:.2f} | {r.gemm_flops_per_s / 1e9:.0f} | {r.floor_ms:.1f} "
            f"| {r.timing.median_ms:.1f} | {r.timing.min_ms:.1f}-{r.timing.max_ms:.1f} "
            f"| {r.ratio:.2f} ({low:.2f}-{high:.2f}) |"
        )
    return "\n".join(lines)


def load_average() -> str:
    """The 1/5/15-minute load averages, or 'unknown'."""
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"
