"""Optimised inference path: BatchNorm folding, channels_last, ONNX Runtime.

``optimize_for_inference(model)`` returns a new module computing the same logits as ``model``
in eval mode (within 1e-4 relative error), faster; ``model`` itself is left untouched, so the
plain path stays available for reference. Backends:

- ``eager``: PyTorch with every Conv->BatchNorm pair folded and channels_last weights and
  activations. Instant to build, any input size, CPU or CUDA.
- ``onnxruntime``: the folded network exported once per input shape (``torch.onnx``, dynamo
  exporter) and run by ONNX Runtime's CPU provider, which fuses Conv+ReLU/Clip and runs
  blocked (NCHWc) AVX-512/AVX2 kernels. Building a session takes a few seconds per shape;
  inputs that are not CPU float32, or new shapes beyond ``max_sessions``, run the eager path.
- ``auto`` (default): ``onnxruntime`` for float32 CPU inputs when ONNX Runtime is installed,
  ``eager`` otherwise.

See ``docs/performance.md`` for the measurements behind these choices.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution equal to ``bn(conv(x))`` with ``bn`` in eval mode (running statistics)."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(conv.weight.detach() * scale.reshape(-1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias.detach())
    return fused


def fold_all_batchnorms(module: nn.Module) -> int:
    """Fold, in place, every BatchNorm2d that directly follows a Conv2d inside a Sequential.

    Returns how many were folded. BatchNorms that follow anything else (e.g. the one after a
    concatenation) are kept.
    """
    folded = 0
    for child in list(module.children()):
        folded += fold_all_batchnorms(child)
    if isinstance(module, nn.Sequential):
        i = 0
        while i < len(module) - 1:
            conv, bn = module[i], module[i + 1]
            if (
                type(conv) is nn.Conv2d
                and type(bn) is nn.BatchNorm2d
                and bn.track_running_stats
                and bn.running_var is not None
            ):
                module[i] = fold_batchnorm(conv, bn)
                del module[i + 1]
                folded += 1
            i += 1
    return folded


class PhaseDilatedConv2d(nn.Module):
    """A dilated depthwise convolution run as an undilated one over dilation^2 phase images.

    oneDNN has no fast kernel for dilated depthwise convolutions (a 5x5, dilation-6 one on a
    64x90x120 map takes ~40x longer than the undilated one), so the input is zero-padded,
    split into its d x d sub-grids (space-to-batch), convolved without dilation and
    interleaved back. A stride that divides the dilation is applied by subsampling the padded
    input first. Same result as the original convolution.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        kernel = conv.kernel_size[0]
        stride = conv.stride[0]
        self.padding = conv.padding[0]
        self.stride = stride
        self.phases = conv.dilation[0] // stride
        self.span = self.phases * (kernel - 1)
        self.conv = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            kernel,
            groups=conv.groups,
            bias=conv.bias is not None,
        ).to(device=conv.weight.device, dtype=conv.weight.dtype)
        self.conv.load_state_dict(conv.state_dict())

    @staticmethod
    def applies_to(module: nn.Module) -> bool:
        """Whether ``module`` is a square, symmetric 'same'-padded dilated depthwise conv."""
        if type(module) is not nn.Conv2d:
            return False
        (kh, kw), (sh, sw), (dh, dw) = module.kernel_size, module.stride, module.dilation
        return (
            module.groups == module.in_channels == module.out_channels
            and kh == kw
            and sh == sw
            and dh == dw > 1
            and dh % sh == 0
            and module.padding == (dh * (kh - 1) // 2,) * 2
            and module.padding_mode == "zeros"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, d = self.padding, self.phases
        x = F.pad(x, (p, p, p, p))
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        n, c, height, width = x.shape
        out_h, out_w = height - self.span, width - self.span
        grid_h, grid_w = -(-height // d), -(-width // d)
        x = F.pad(x, (0, grid_w * d - width, 0, grid_h * d - height))
        # (n, c, gh*d, gw*d) -> (n*d*d, c, gh, gw), built in channels_last physical order
        x = x.permute(0, 2, 3, 1).reshape(n, grid_h, d, grid_w, d, c)
        x = x.permute(0, 2, 4, 1, 3, 5).reshape(n * d * d, grid_h, grid_w, c).permute(0, 3, 1, 2)
        y = self.conv(x)
        yh, yw = y.shape[-2:]
        y = y.permute(0, 2, 3, 1).reshape(n, d, d, yh, yw, c)
        y = y.permute(0, 3, 1, 4, 2, 5).reshape(n, yh * d, yw * d, c).permute(0, 3, 1, 2)
        return y[:, :, :out_h, :out_w]


def replace_dilated_depthwise(module: nn.Module) -> int:
    """Replace each dilated depthwise conv by a ``PhaseDilatedConv2d``, in place; count them."""
    replaced = 0
    for name, child in list(module.named_children()):
        if PhaseDilatedConv2d.applies_to(child):
            setattr(module, name, PhaseDilatedConv2d(child))
            replaced += 1
        else:
            replaced += replace_dilated_depthwise(child)
    return replaced


class EagerInferenceModel(nn.Module):
    """An optimised network run by PyTorch; converts the input's memory format."""

    backend = "eager"

    def __init__(self, net: nn.Module, channels_last: bool) -> None:
        super().__init__()
        self.net = net
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x).contiguous()

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits upsampled bilinearly to the input size."""
        return F.interpolate(self(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


def onnxruntime_available() -> bool:
    """Whether the ``onnxruntime`` package can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx_bytes(net: nn.Module, example: torch.Tensor) -> bytes:
    """Serialised ONNX model of ``net`` (eval mode) for inputs shaped like ``example``."""
    with (
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net, (example,), dynamo=True, input_names=["image"], output_names=["logits"]
        )
    return program.model_proto.SerializeToString()


class OnnxRuntimeModel(nn.Module):
    """Runs ``net`` through ONNX Runtime, exporting it once per input shape and thread count.

    Float32 CPU inputs go to ONNX Runtime; any other input (CUDA, half precision), and any new
    shape once ``max_sessions`` sessions exist (inputs of ever-changing sizes would otherwise
    pay an export each), runs ``fallback``, so the module is usable everywhere.
    """

    backend = "onnxruntime"

    def __init__(self, net: nn.Module, fallback: nn.Module, max_sessions: int = 8) -> None:
        super().__init__()
        self.net = net
        self.fallback = fallback
        self.max_sessions = max_sessions
        self.sessions: dict[tuple[tuple[int, ...], int], object] = {}

    def _key(self, x: torch.Tensor) -> tuple[tuple[int, ...], int]:
        return tuple(x.shape), torch.get_num_threads()

    def session(self, x: torch.Tensor) -> object:
        """The ONNX Runtime session for inputs shaped like ``x`` (built on first use)."""
        key = self._key(x)
        if key not in self.sessions:
            self.add_session(export_onnx_bytes(self.net, torch.zeros_like(x)), tuple(x.shape))
        return self.sessions[key]

    def add_session(self, model_bytes: bytes, shape: tuple[int, ...]) -> None:
        """Run inputs of ``shape`` with ``model_bytes``, an ONNX export of :attr:`net` for that
        shape (e.g. the one an evaluation saves), instead of exporting it again."""
        import onnxruntime as ort

        threads = torch.get_num_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.sessions[tuple(shape), threads] = ort.InferenceSession(
            model_bytes, options, providers=["CPUExecutionProvider"]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32:
            return self.fallback(x)
        if self._key(x) not in self.sessions and len(self.sessions) >= self.max_sessions:
            return self.fallback(x)
        image = np.ascontiguousarray(x.detach().numpy())
        (logits,) = self.session(x).run(["logits"], {"image": image})
        return torch.from_numpy(logits)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits upsampled bilinearly to the input size."""
        return F.interpolate(self(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


BACKENDS = ("auto", "eager", "onnxruntime")


def optimize_for_inference(
    model: nn.Module,
    backend: str = "auto",
    channels_last: bool = True,
    fold_bn: bool = True,
) -> nn.Module:
    """An eval-mode, BatchNorm-folded copy of ``model`` run by ``backend``.

    ``backend`` is ``auto`` (ONNX Runtime on CPU when installed, else eager), ``eager`` or
    ``onnxruntime``; ``channels_last`` applies to the eager backend. The result returns the
    same logits as ``model.eval()`` within 1e-4 relative error, has a ``predict`` method like
    ``SegmentationNet`` and is meant for ``torch.no_grad()`` / ``torch.inference_mode()``
    use. ``model`` is not modified.
    """
    if backend not in BACKENDS:
        raise ValueError(f"inference backend {backend!r} is not one of {', '.join(BACKENDS)}")
    net = copy.deepcopy(model).eval()
    if fold_bn:
        fold_all_batchnorms(net)
    for p in net.parameters():
        p.requires_grad_(False)
    device = next(net.parameters()).device
    if backend == "auto":
        use_ort = device.type == "cpu" and onnxruntime_available()
        backend = "onnxruntime" if use_ort else "eager"
    if backend == "onnxruntime":
        return OnnxRuntimeModel(net, _eager(copy.deepcopy(net), channels_last)).eval()
    return _eager(net, channels_last)


def _eager(net: nn.Module, channels_last: bool) -> EagerInferenceModel:
    replace_dilated_depthwise(net)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return EagerInferenceModel(net, channels_last).eval()
