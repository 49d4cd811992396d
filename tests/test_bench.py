"""Functional behaviour of the benchmark helpers (no timing assertions)."""

import json

import pytest
import torch
from torch import nn

from segnas import bench
from segnas.cli import main
from segnas.complexity import Timing, count_flops
from segnas.model import SEARCH_CONFIG, build_model
from segnas.published import published


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def small_model():
    return build_model(published("arch0"), num_classes=5, seed=0, **SEARCH_CONFIG)


def test_time_against_floor_interleaves_and_counts_runs():
    calls = []
    timing, gemm_timing, rate = bench.time_against_floor(
        lambda: calls.append(1), gemm_size=64, warmup=2, repeats=5
    )
    assert len(calls) == 7
    assert timing.repeats == gemm_timing.repeats == 5
    assert timing.min_ms <= timing.median_ms <= timing.max_ms
    assert rate == pytest.approx(2 * 64**3 / (gemm_timing.median_ms / 1000))


def test_gemm_rate_is_positive():
    rate, timing = bench.gemm_rate(size=64, warmup=0, repeats=3)
    assert rate > 0
    assert timing.repeats == 3


def test_result_ratio_and_dict():
    result = bench.BenchResult(
        "latency",
        "arch0",
        "eager",
        (8, 8),
        1,
        1,
        "cpu",
        flops=2_000_000_000,
        gemm_flops_per_s=100e9,
        timing=Timing(60.0, 50.0, 90.0, 5),
        gemm_timing=Timing(1.0, 1.0, 1.0, 5),
    )
    assert result.floor_ms == pytest.approx(20.0)
    assert result.ratio == pytest.approx(3.0)
    assert result.ratio_range == pytest.approx((2.5, 4.5))
    row = result.to_dict()
    assert row["ratio"] == pytest.approx(3.0)
    assert json.loads(json.dumps(row))["size"] == [8, 8]
    table = bench.format_table([result])
    assert "| latency | arch0 | eager | 8x8 | 1 | 2.00 | 100 | 20.0 | 60.0 | 50.0-90.0 |" in table
    assert "3.00 (2.50-4.50)" in table


def test_calibrate_batchnorm_is_seeded_and_returns_eval_mode():
    a = bench.calibrate_batchnorm(small_model(), size=(32, 32), seed=3)
    b = bench.calibrate_batchnorm(small_model(), size=(32, 32), seed=3)
    assert not a.training
    bn_a = [m for m in a.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_b = [m for m in b.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.equal(x.running_var, y.running_var) for x, y in zip(bn_a, bn_b, strict=True))
    assert any(not torch.allclose(m.running_var, torch.ones_like(m.running_var)) for m in bn_a)


def test_train_step_flops_counts_backward_and_leaves_the_model_unchanged():
    model = small_model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    forward = count_flops(model, (32, 48), batch=2)
    step = bench.train_step_flops(model, (32, 48), batch=2, num_classes=5)
    # backward of a convolution costs about twice its forward (input and weight gradients)
    assert 2.0 * forward < step < 3.5 * forward
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_train_step_flops_count_a_depthwise_backward_as_two_forwards():
    # torch's own formula ignores groups in the weight gradient (65x forward for this conv)
    model = nn.Sequential(nn.Conv2d(3, 64, 1), nn.Conv2d(64, 64, 3, padding=1, groups=64))
    depthwise_forward = 2 * 64 * 9 * 8 * 8
    pointwise_forward = 2 * 3 * 64 * 8 * 8

    def step_flops(module):
        flops = bench.FlopCounterMode(
            display=False,
            custom_mapping={torch.ops.aten.convolution_backward: bench._conv_backward_flops},
        )
        with flops:
            module(torch.zeros(1, 3, 8, 8)).sum().backward()
        return flops.get_total_flops()

    # forward of both, input+weight gradients of the depthwise conv, weight gradient of the first
    expected = 3 * depthwise_forward + 2 * pointwise_forward
    assert step_flops(model) == expected


def test_train_step_updates_the_weights_and_returns_a_finite_loss():
    model = small_model()
    before = [p.detach().clone() for p in model.parameters()]
    step = bench.make_train_step(model, (32, 32), batch=2, num_classes=5)
    loss = step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_cli_latency_prints_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "latency",
            "--arch",
            "arch0",
            "--size",
            "33x47",
            "--threads",
            "1",
            "--backend",
            "eager",
            "--plain",
            "--warmup",
            "0",
            "--repeats",
            "2",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "| latency | arch0 | plain | 33x47 |" in text
    assert "| latency | arch0 | eager | 33x47 |" in text
    assert "load average" in text
    saved = json.loads(out.read_text())
    assert [r["path"] for r in saved["results"]] == ["plain", "eager"]
    assert all(r["flops"] > 0 and r["ratio"] > 0 for r in saved["results"])


def test_cli_train_uses_search_widths(capsys):
    code = main(
        [
            "bench",
            "train",
            "--size",
            "33x33",
            "--batch",
            "2",
            "--threads",
            "1",
            "--warmup",
            "0",
            "--repeats",
            "1",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "| train | arch0 | channels_last | 33x33 | 2 |" in text


def test_cli_rejects_bad_values(capsys):
    with pytest.raises(SystemExit) as refused:  # argparse names the option
        main(["bench", "latency", "--threads", "0"])
    assert refused.value.code == 2
    assert "argument --threads: '0' must be at least 1" in capsys.readouterr().err
    assert main(["bench", "latency", "--arch", "arch9"]) == 2
    assert "arch9" in capsys.readouterr().err
