import torch
from torch import nn

from segnas.complexity import (
    count_flops,
    count_params,
    measure_latency,
    output_stride,
    state_dict_bytes,
    time_callable,
)
from segnas.model import build_model
from segnas.published import published


def test_count_flops_of_a_single_convolution():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # 2 FLOPs per multiply-add: 2 * out_channels * in_channels * 9 * H * W
    assert count_flops(conv, (10, 12)) == 2 * 8 * 3 * 9 * 10 * 12


def test_model_facts_of_arch0():
    model = build_model(published("arch0"), num_classes=19)
    assert count_params(model) == 279_059
    assert output_stride(model, (360, 480)) == 4
    flops = count_flops(model, (360, 480))
    assert 1e9 < flops < 5e9
    assert count_flops(model, (720, 960)) > 3.5 * flops
    size = state_dict_bytes(model)
    assert 4 * 279_059 < size < 4 * 279_059 * 1.5
    assert model.training


def test_latency_measurement_reports_spread():
    model = build_model(published("arch1"), num_classes=11)
    timing = measure_latency(model, (64, 64), threads=1, warmup=1, repeats=3)
    assert timing.repeats == 3
    assert 0 < timing.min_ms <= timing.median_ms <= timing.max_ms
    assert model.training
    calls = []
    assert time_callable(lambda: calls.append(1), warmup=2, repeats=4).repeats == 4
    assert len(calls) == 6


def test_latency_measurement_restores_the_thread_count():
    model = build_model(published("arch1"), num_classes=11)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        measure_latency(model, (32, 32), threads=1, warmup=0, repeats=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
