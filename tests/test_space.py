import json
import random

import pytest

from segnas.errors import GenotypeError
from segnas.published import RELEASED, published
from segnas.space import OPS, Block, Genotype, SearchSpace, Template

SPACE = SearchSpace()
RELEASED_JSON = published("arch0").to_json()


def test_default_space_matches_paper():
    assert SPACE.num_templates == 3
    assert SPACE.num_blocks == 7
    assert SPACE.max_repeats == 4
    assert SPACE.num_strided_blocks == 3
    assert len(SPACE.ops) == 6
    assert SPACE.aggregations == ("sum", "concat")
    # 3 templates x 3 decisions + 7 blocks x 4 decisions + 3 free strides
    assert SPACE.num_decisions == 9 + 28 + 3


@pytest.mark.parametrize("seed", range(25))
def test_sampled_genotypes_are_valid_and_round_trip(seed):
    genotype = SPACE.sample(seed)
    SPACE.validate(genotype)
    assert SPACE.from_text(genotype.to_text()) == genotype
    assert SPACE.from_json(genotype.to_json()) == genotype
    assert SPACE.parse(genotype.to_text()) == genotype
    assert SPACE.from_release(genotype.to_release()) == genotype
    assert SPACE.from_text(genotype.to_text()).to_text() == genotype.to_text()


def test_sampling_is_seeded():
    assert SPACE.sample(7) == SPACE.sample(7)
    rng_a, rng_b = random.Random(1), random.Random(1)
    assert [SPACE.sample(rng_a) for _ in range(5)] == [SPACE.sample(rng_b) for _ in range(5)]
    assert len({SPACE.sample(s).hash for s in range(50)}) == 50


def test_sampling_covers_every_choice():
    seen_ops, seen_strides, seen_repeats, seen_last_loc = set(), set(), set(), set()
    for seed in range(300):
        g = SPACE.sample(seed)
        seen_ops.update(t.op1 for t in g.templates)
        seen_strides.update(b.stride for b in g.blocks[:3])
        seen_repeats.update(b.repeats for b in g.blocks)
        seen_last_loc.add(g.blocks[-1].loc1)
        assert all(b.stride == 1 for b in g.blocks[3:])
    assert seen_ops == set(OPS)
    assert seen_strides == {1, 2}
    assert seen_repeats == {1, 2, 3, 4}
    assert seen_last_loc == set(range(8))


def test_hash_is_stable_and_distinguishes():
    arch0, arch1 = published("arch0"), published("arch1")
    assert arch0.hash == SPACE.from_text(arch0.to_text()).hash
    assert arch0.hash != arch1.hash
    assert len(arch0.hash) == 12


def test_stored_record_round_trips_and_refuses_an_edited_genotype():
    space = SearchSpace()
    genotype = space.sample(random.Random(3))
    record = genotype.to_record()
    assert record == {"genotype": genotype.to_text(), "hash": genotype.hash}
    assert space.from_record(json.loads(json.dumps(record)), "samples.json") == genotype
    other = space.sample(random.Random(4)).to_text()
    with pytest.raises(GenotypeError, match=r"samples\.json 2: genotype .* not the stored"):
        space.from_record({**record, "genotype": other}, "samples.json 2")
    with pytest.raises(GenotypeError, match=r"samples\.json 2: no readable genotype"):
        space.from_record({"hash": genotype.hash}, "samples.json 2")
    legacy = {"genotype": genotype.to_list(), "hash": genotype.hash}  # before the text form
    assert space.from_record(json.loads(json.dumps(legacy)), "samples.json") == genotype


def test_release_encoding_round_trips_exactly():
    for name, encoded in RELEASED.items():
        assert published(name).to_release() == encoded


def test_published_arch0_decoded():
    g = published("arch0")
    assert g.templates[0] == Template("max_pool_3x3", "sep_conv_3x3", "concat")
    assert g.blocks[0] == Block(0, 1, 0, 1, 2)
    assert g.blocks[1] == Block(2, 1, 2, 2, 1)


@pytest.mark.parametrize(
    ("strides", "factor"), [((1, 1, 1), 1), ((2, 1, 1), 2), ((2, 2, 1), 4), ((2, 2, 2), 8)]
)
def test_downsampling_factor(strides, factor):
    g = SPACE.sample(0)
    blocks = tuple(
        Block(b.loc1, b.loc2, b.template, b.repeats, strides[i] if i < 3 else 1)
        for i, b in enumerate(g.blocks)
    )
    assert Genotype(g.templates, blocks).downsampling_factor == factor


def _with_block(genotype: Genotype, index: int, **changes) -> Genotype:
    blocks = list(genotype.blocks)
    fields = blocks[index].__dict__ | changes
    blocks[index] = Block(**fields)
    return Genotype(genotype.templates, tuple(blocks))


@pytest.mark.parametrize(
    ("index", "changes", "message"),
    [
        (0, {"loc1": 2}, r"blocks\[0\]\.loc1: location 2 is outside the pool"),
        (3, {"loc2": 5}, r"blocks\[3\]\.loc2: location 5 is outside the pool \(block 3 can read"),
        (0, {"loc1": -1}, r"blocks\[0\]\.loc1"),
        (4, {"stride": 2}, r"blocks\[4\]\.stride: 2 not allowed; only the first 3 blocks"),
        (1, {"stride": 3}, r"blocks\[1\]\.stride: 3 not allowed"),
        (2, {"repeats": 5}, r"blocks\[2\]\.repeats: 5 is outside 1\.\.4"),
        (2, {"repeats": 0}, r"blocks\[2\]\.repeats: 0"),
        (5, {"template": 3}, r"blocks\[5\]\.template: 3 is not a template index 0\.\.2"),
    ],
)
def test_invalid_blocks_name_field_and_value(index, changes, message):
    bad = _with_block(published("arch0"), index, **changes)
    with pytest.raises(GenotypeError, match=message):
        SPACE.validate(bad)


def test_unknown_operation_and_aggregation():
    g = published("arch1")
    bad_op = Genotype((Template("conv_7x7", "skip_connect", "sum"), *g.templates[1:]), g.blocks)
    with pytest.raises(GenotypeError, match=r"templates\[0\]\.op1: unknown operation 'conv_7x7'"):
        SPACE.validate(bad_op)
    bad_agg = Genotype(
        (*g.templates[:2], Template("skip_connect", "sep_conv_3x3", "max")), g.blocks
    )
    with pytest.raises(GenotypeError, match=r"templates\[2\]\.agg: unknown aggregation 'max'"):
        SPACE.validate(bad_agg)


def test_wrong_lengths():
    g = published("arch0")
    with pytest.raises(GenotypeError, match="expected 3 templates, got 2"):
        SPACE.validate(Genotype(g.templates[:2], g.blocks))
    with pytest.raises(GenotypeError, match="expected 7 blocks, got 6"):
        SPACE.validate(Genotype(g.templates, g.blocks[:6]))


def test_malformed_text_and_json():
    with pytest.raises(GenotypeError, match="is not of the form"):
        SPACE.from_text("hello")
    with pytest.raises(GenotypeError, match="block 0 '0-1-x' is not of the form"):
        SPACE.from_text("T:a+b@sum B:0-1-x")
    with pytest.raises(GenotypeError, match="malformed"):
        SPACE.from_json("[[")
    with pytest.raises(GenotypeError, match="index 9 is outside"):
        SPACE.from_release([[[9, 0, 0]] * 3, RELEASED["arch0"][1]])


def test_custom_space_parameters():
    small = SearchSpace(
        num_templates=2, num_blocks=4, max_repeats=2, ops=("sep_conv_3x3", "skip_connect")
    )
    assert small.num_strided_blocks == 2
    for seed in range(20):
        g = small.sample(seed)
        small.validate(g)
        assert len(g.templates) == 2 and len(g.blocks) == 4
        assert all(b.repeats <= 2 for b in g.blocks)
        assert {t.op1 for t in g.templates} <= {"sep_conv_3x3", "skip_connect"}
    with pytest.raises(GenotypeError, match="unknown operations"):
        SearchSpace(ops=("conv_9x9",))
    with pytest.raises(GenotypeError, match="num_blocks must be >= 1"):
        SearchSpace(num_blocks=0)


@pytest.mark.parametrize("bad", [1.7, 1e400, True, "x"])
def test_json_block_values_must_be_integers(bad):
    data = json.loads(RELEASED_JSON)
    data[1][0][3] = bad
    text = json.dumps(data)
    with pytest.raises(GenotypeError, match=r"blocks\[0\]\.repeats"):
        SPACE.from_json(text.replace("Infinity", "1e400"))
    with pytest.raises(GenotypeError, match=r"blocks\[0\]"):
        release = SPACE.from_json(RELEASED_JSON).to_release()
        release[1][0][3] = bad
        SPACE.from_release(release)


def test_cli_refuses_a_fractional_repeat_and_an_out_of_range_class_count(capsys):
    from segnas.cli import main

    data = json.loads(RELEASED_JSON)
    data[1][0][3] = 1.7
    assert main(["arch", "validate", json.dumps(data)]) == 2
    assert "1.7" in capsys.readouterr().err
    for classes in ("0", "100000"):
        assert main(["arch", "show", "arch0", "--classes", classes]) == 2
        assert "--classes" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["validate", "show"])
def test_a_json_object_genotype_is_reported_as_json_not_text(command, capsys):
    """Issue 29 item 10: ``{"templates":[],"blocks":[]}`` was "not of the form T:..."."""
    from segnas.cli import main

    text = '{"templates":[],"blocks":[]}'
    assert main(["arch", command, text]) == 2
    err = capsys.readouterr().err
    assert "genotype JSON" in err and "is an object (keys templates, blocks), not a list" in err
    assert "T:" not in err and "--format json" in err
    assert main(["arch", command, ' {"templates": ['])
    err = capsys.readouterr().err
    assert "genotype JSON is malformed" in err and "T:" not in err
