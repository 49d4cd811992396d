import pytest
import torch
from torch import nn

from segnas.bench import calibrate_batchnorm
from segnas.inference import (
    EagerInferenceModel,
    OnnxRuntimeModel,
    PhaseDilatedConv2d,
    fold_all_batchnorms,
    fold_batchnorm,
    onnxruntime_available,
    optimize_for_inference,
)
from segnas.model import FINAL_CONFIG, SEARCH_CONFIG, build_model
from segnas.published import published
from segnas.space import DEFAULT_SPACE

needs_ort = pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime not installed")


@pytest.fixture(autouse=True)
def one_thread():
    """Single-threaded: many tiny ops run faster and steadier without a thread barrier each."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out - ref).abs().max() / ref.abs().max()).item()


def trained_like(genotype, config=FINAL_CONFIG, seed=0):
    """A seeded model whose BatchNorms have non-trivial affine terms and calibrated stats."""
    model = build_model(genotype, num_classes=19, seed=seed, **config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(0.5 + torch.rand(module.num_features, generator=generator))
                module.bias.copy_(0.2 * torch.randn(module.num_features, generator=generator))
    return calibrate_batchnorm(model, size=(64, 96), seed=seed)


def random_genotypes(count):
    return [DEFAULT_SPACE.sample(seed) for seed in range(count)]


def test_fold_batchnorm_matches_conv_then_batchnorm():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=2, dilation=2, groups=2, bias=True)
    bn = nn.BatchNorm2d(16)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()
    bn.eval()
    x = torch.randn(2, 8, 17, 23)
    fused = fold_batchnorm(conv, bn)
    assert relative_error(fused(x), bn(conv(x))) < 1e-5


@pytest.mark.parametrize(
    ("kernel", "dilation", "stride", "size"),
    [(5, 6, 1, (90, 120)), (5, 6, 2, (45, 61)), (3, 2, 1, (17, 19)), (5, 6, 1, (7, 9))],
)
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_phase_dilated_conv_matches_dilated_conv(kernel, dilation, stride, size, memory_format):
    torch.manual_seed(0)
    pad = dilation * (kernel - 1) // 2
    conv = nn.Conv2d(16, 16, kernel, stride, pad, dilation, groups=16, bias=True)
    assert PhaseDilatedConv2d.applies_to(conv)
    x = torch.randn(2, 16, *size).contiguous(memory_format=memory_format)
    with torch.no_grad():
        ref = conv(x)
        out = PhaseDilatedConv2d(conv)(x)
    assert out.shape == ref.shape
    assert relative_error(out, ref) < 1e-5


def test_phase_dilated_conv_leaves_other_convs_alone():
    assert not PhaseDilatedConv2d.applies_to(nn.Conv2d(8, 8, 5, padding=2, groups=8))
    assert not PhaseDilatedConv2d.applies_to(nn.Conv2d(8, 16, 5, padding=12, dilation=6))
    assert not PhaseDilatedConv2d.applies_to(
        nn.Conv2d(8, 8, 5, stride=4, padding=12, dilation=6, groups=8)
    )


def test_fold_all_batchnorms_removes_conv_bn_pairs_only():
    model = trained_like(published("arch0"))
    before = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    folded = fold_all_batchnorms(model)
    after = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert folded > 0
    assert before - after == folded
    # arch0's concatenation aggregations keep their BatchNorm (it follows a concat, not a conv)
    assert after > 0


@pytest.mark.parametrize(
    ("genotype", "config", "size"),
    [
        (published("arch0"), FINAL_CONFIG, (123, 161)),
        (published("arch1"), FINAL_CONFIG, (97, 131)),
        (published("arch0"), SEARCH_CONFIG, (65, 67)),
        *[(g, SEARCH_CONFIG, (71, 93)) for g in random_genotypes(4)],
        *[(g, FINAL_CONFIG, (50, 77)) for g in random_genotypes(6)[4:]],
    ],
)
def test_eager_backend_matches_plain_model(genotype, config, size):
    model = trained_like(genotype, config)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    fast = optimize_for_inference(model, backend="eager")
    assert isinstance(fast, EagerInferenceModel)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = model(x)
        out = fast(x)
    assert out.shape == ref.shape
    assert out.is_contiguous()
    assert relative_error(out, ref) < 1e-4
    # the plain model is untouched: same weights, still usable
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 0


def test_eager_backend_without_channels_last_or_folding():
    model = trained_like(published("arch1"), SEARCH_CONFIG)
    x = torch.randn(1, 3, 45, 61)
    with torch.inference_mode():
        ref = model(x)
        for kwargs in ({"channels_last": False}, {"fold_bn": False}):
            out = optimize_for_inference(model, backend="eager", **kwargs)(x)
            assert relative_error(out, ref) < 1e-4


@needs_ort
@pytest.mark.parametrize(
    ("genotype", "config"),
    [
        (published("arch0"), FINAL_CONFIG),
        (published("arch1"), FINAL_CONFIG),
        (random_genotypes(7)[6], SEARCH_CONFIG),
    ],
)
def test_onnxruntime_backend_matches_plain_model(genotype, config):
    model = trained_like(genotype, config)
    fast = optimize_for_inference(model)  # auto picks ONNX Runtime for a CPU float32 model
    assert isinstance(fast, OnnxRuntimeModel)
    x = torch.randn(1, 3, 61, 83, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = model(x)
        out = fast(x)
        again = fast(x)
    assert out.shape == ref.shape
    assert out.dtype == torch.float32
    assert relative_error(out, ref) < 1e-4
    assert torch.equal(out, again)
    assert len(fast.sessions) == 1  # really ran through ONNX Runtime, one session per shape


@needs_ort
def test_onnxruntime_backend_new_shape_gets_a_new_session_and_predict_works():
    model = trained_like(random_genotypes(9)[8], SEARCH_CONFIG)
    fast = optimize_for_inference(model, backend="onnxruntime")
    first, second = torch.randn(1, 3, 33, 47), torch.randn(2, 3, 40, 40)
    with torch.inference_mode():
        assert relative_error(fast(first), model(first)) < 1e-4
        pred = fast.predict(second)
        assert relative_error(pred, model.predict(second)) < 1e-4
    assert pred.shape == (2, 19, 40, 40)
    assert len(fast.sessions) == 2


@needs_ort
def test_onnxruntime_backend_stops_exporting_after_max_sessions():
    model = trained_like(published("arch1"), SEARCH_CONFIG)
    fast = optimize_for_inference(model, backend="onnxruntime")
    fast.max_sessions = 1
    first, second = torch.randn(1, 3, 35, 45), torch.randn(1, 3, 45, 35)
    with torch.inference_mode():
        assert relative_error(fast(first), model(first)) < 1e-4
        assert relative_error(fast(second), model(second)) < 1e-4
    assert list(fast.sessions) == [((1, 3, 35, 45), torch.get_num_threads())]


def test_onnxruntime_backend_runs_non_float32_inputs_eagerly():
    model = trained_like(published("arch0"), SEARCH_CONFIG).double()
    fast = optimize_for_inference(model, backend="onnxruntime")
    x = torch.randn(1, 3, 29, 31, dtype=torch.float64)
    with torch.inference_mode():
        out = fast(x)
        ref = model(x)
    assert out.dtype == torch.float64
    assert relative_error(out, ref) < 1e-10
    assert len(fast.sessions) == 0


def test_eager_predict_upsamples_to_the_input_size():
    model = trained_like(published("arch0"), SEARCH_CONFIG)
    fast = optimize_for_inference(model, backend="eager")
    x = torch.randn(1, 3, 37, 53)
    with torch.inference_mode():
        pred = fast.predict(x)
        ref = model.predict(x)
    assert pred.shape == (1, 19, 37, 53)
    assert relative_error(pred, ref) < 1e-4


def test_unknown_backend_is_rejected():
    model = build_model(published("arch0"), seed=0, **SEARCH_CONFIG)
    with pytest.raises(ValueError, match="tensorrt"):
        optimize_for_inference(model, backend="tensorrt")
