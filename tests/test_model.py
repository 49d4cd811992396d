import pytest
import torch

from segnas.complexity import count_params
from segnas.model import FINAL_CONFIG, SEARCH_CONFIG, build_decoder, build_model
from segnas.ops import Aggregation
from segnas.published import published
from segnas.space import Block, Genotype, SearchSpace, Template

SPACE = SearchSpace()
# Parameter counts of the released decoder + head (19 classes), from the reference file.
RELEASED_DECODER_PARAMS = {"arch0": 223_571, "arch1": 211_659}
TORCHVISION_STEM_PARAMS = 55_488


@pytest.mark.parametrize("name", ["arch0", "arch1"])
def test_published_parameter_counts(name):
    model = build_model(published(name), num_classes=19, **FINAL_CONFIG)
    decoder = count_params(model.decoder)
    assert decoder == RELEASED_DECODER_PARAMS[name]
    assert count_params(model.stem) == TORCHVISION_STEM_PARAMS
    assert count_params(model) == RELEASED_DECODER_PARAMS[name] + TORCHVISION_STEM_PARAMS


@pytest.mark.parametrize("name", ["arch0", "arch1"])
def test_published_forward_is_quarter_resolution(name):
    model = build_model(published(name), num_classes=19, seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 360, 480))
    assert out.shape == (1, 19, 90, 120)
    assert torch.isfinite(out).all()


def test_class_count_and_widths_change_only_the_expected_layers():
    g = published("arch0")
    eleven = count_params(build_decoder(g, 11, **FINAL_CONFIG))
    nineteen = count_params(build_decoder(g, 19, **FINAL_CONFIG))
    # only the 3x3 classifier (64 inputs, 9 taps, + bias) depends on the class count
    assert nineteen - eleven == 8 * (64 * 9 + 1)
    assert count_params(build_decoder(g, 19, **SEARCH_CONFIG)) < eleven


def _expected_size(genotype: Genotype, height: int, width: int) -> tuple[int, int]:
    """Output size implied by the structural rules, tracked per pool entry."""

    def down(size, stride):
        return tuple(-(-s // stride) for s in size)

    def op_size(op, size, stride):
        return size if op in ("skip_connect", "global_average_pool") else down(size, stride)

    def join(a, b, shrink):
        return (min if shrink else max)(a, b)

    quarter = down(down(down((height, width), 2), 2), 1)
    pool = [quarter, down(quarter, 2)]
    used = set()
    for i, b in enumerate(genotype.blocks):
        t = genotype.templates[b.template]
        x1, x2 = pool[b.loc1], pool[b.loc2]
        for _ in range(b.repeats):
            y = join(op_size(t.op1, x1, b.stride), op_size(t.op2, x2, b.stride), i < 3)
            x1, x2 = x2, y
        pool.append(x2)
        used.update((b.loc1, b.loc2))
    collected = [pool[i] for i in range(2, len(pool)) if i not in used]
    return max(collected, key=lambda s: s[0])


@pytest.mark.parametrize("seed", range(22))
def test_random_genotypes_build_and_run(seed):
    genotype = SPACE.sample(seed)
    size = (97, 131) if seed % 2 else (64, 96)
    model = build_model(genotype, num_classes=5, **SEARCH_CONFIG, seed=seed)
    model.train()
    x = torch.randn(2, 3, *size)
    out = model(x)
    assert out.shape[:2] == (2, 5)
    assert tuple(out.shape[2:]) == _expected_size(genotype, *size)
    out.mean().backward()
    assert all(p.grad is not None for p in model.decoder.head.parameters())
    assert model.predict(x).shape[2:] == size


def test_stride_two_in_a_repeated_block_applies_to_every_instance():
    g = published("arch0")
    blocks = list(g.blocks)
    # block 0 repeats twice with stride 2: its output is at 1/16 of the input for sep/max ops
    blocks[0] = Block(0, 1, 0, 2, 2)
    genotype = Genotype(g.templates, tuple(blocks))
    assert _expected_size(genotype, 128, 128) == (32, 32)
    model = build_model(genotype, num_classes=3, seed=0).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 128, 128)).shape[2:] == (32, 32)


def test_seeded_build_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(published("arch1"), seed=5)
    after = torch.rand(1)
    b = build_model(published("arch1"), seed=5)
    assert torch.equal(before, after)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_every_convolution_is_bias_free_except_the_classifier():
    model = build_model(published("arch0"))
    convs = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.bias is not None for c in convs].count(True) == 1
    assert model.decoder.head[-1].bias is not None


def test_decoder_alone_runs_on_stem_features():
    decoder = build_decoder(published("arch0"), 11, **SEARCH_CONFIG, seed=0).eval()
    with torch.no_grad():
        out = decoder(torch.randn(1, 24, 40, 40), torch.randn(1, 32, 20, 20))
    assert out.shape == (1, 11, 40, 40)


@pytest.mark.parametrize("shrink", [True, False])
@pytest.mark.parametrize("swap", [False, True])
def test_aggregation_compares_height_then_width(shrink, swap):
    wide, narrow = torch.randn(1, 4, 1, 3), torch.randn(1, 4, 1, 2)
    x0, x1 = (narrow, wide) if swap else (wide, narrow)
    out = Aggregation("sum", 4, 4, shrink).eval()(x0, x1)
    assert out.shape[2:] == ((1, 2) if shrink else (1, 3))


def test_strided_chain_down_to_one_row_matches_the_release():
    """Blocks 0-1 shrink a 2x6 map to 1x3, then join 1x3 (skip) with 1x2 (strided sep conv)."""
    skip_sep = Template("skip_connect", "sep_conv_3x3", "sum")
    sep_sep = Template("sep_conv_3x3", "sep_conv_3x3", "sum")
    chain = [Block(1, 1, 0, 1, 2), Block(2, 2, 0, 1, 2)]
    chain += [Block(i, i, 1, 1, 1) for i in range(3, 8)]
    genotype = Genotype((skip_sep, sep_sep, sep_sep), tuple(chain))
    assert _expected_size(genotype, 16, 48) == (1, 2)
    model = build_model(genotype, num_classes=3, **SEARCH_CONFIG, seed=0).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 16, 48)).shape[2:] == (1, 2)
