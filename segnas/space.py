"""The template-based search space: genotypes, validation, encodings, sampling, descriptors.

A genotype holds M templates ``[op1, op2, agg]`` and N blocks
``[loc1, loc2, template, repeats, stride]``. Block ``i`` reads two entries of a pool that
starts with the stem's two outputs (0 = 1/4, 1 = 1/8) and grows by one entry (index
``2 + i``) per block. Stride 2 is allowed only in the first ``floor(N / 2)`` blocks.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .errors import GenotypeError

OPS: tuple[str, ...] = (
    "sep_conv_3x3",
    "sep_conv_5x5",
    "global_average_pool",
    "max_pool_3x3",
    "sep_conv_5x5_dil6",
    "skip_connect",
)
AGGREGATIONS: tuple[str, ...] = ("sum", "concat")
NUM_STEM_OUTPUTS = 2


@dataclass(frozen=True)
class Template:
    """Two operations and the aggregation that joins their outputs."""

    op1: str
    op2: str
    agg: str


@dataclass(frozen=True)
class Block:
    """Two pool inputs, the template applied to them, its repeat count and stride."""

    loc1: int
    loc2: int
    template: int
    repeats: int
    stride: int


@dataclass(frozen=True)
class Genotype:
    """An architecture description: templates and blocks."""

    templates: tuple[Template, ...]
    blocks: tuple[Block, ...]

    def to_list(self) -> list:
        """Plain nested lists with op and aggregation names (the JSON form)."""
        return [
            [[t.op1, t.op2, t.agg] for t in self.templates],
            [[b.loc1, b.loc2, b.template, b.repeats, b.stride] for b in self.blocks],
        ]

    def to_json(self) -> str:
        """Compact, stable JSON text."""
        return json.dumps(self.to_list(), separators=(",", ":"))

    def to_text(self) -> str:
        """Readable one-line form, e.g. ``T:op+op@sum,... B:0-1-t0-r1-s2,...``."""
        templates = ",".join(f"{t.op1}+{t.op2}@{t.agg}" for t in self.templates)
        blocks = ",".join(
            f"{b.loc1}-{b.loc2}-t{b.template}-r{b.repeats}-s{b.stride}" for b in self.blocks
        )
        return f"T:{templates} B:{blocks}"

    def __str__(self) -> str:
        return self.to_text()

    def to_record(self) -> dict[str, str]:
        """The form stored in the pipeline's files: the readable text and its hash."""
        return {"genotype": self.to_text(), "hash": self.hash}

    @property
    def hash(self) -> str:
        """12 hex digits identifying the architecture (SHA-256 of its JSON form)."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()[:12]

    @property
    def downsampling_factor(self) -> int:
        """2 to the power of the number of blocks with stride 2 (the paper's Fig. 6/7)."""
        return 2 ** sum(1 for b in self.blocks if b.stride == 2)

    def to_release(self, space: SearchSpace | None = None) -> list:
        """The released code's integer encoding ``[templates, blocks]``."""
        space = space or SearchSpace()
        return [
            [
                [space.ops.index(t.op1), space.ops.index(t.op2), space.aggregations.index(t.agg)]
                for t in self.templates
            ],
            [
                [b.loc1, b.loc2, b.template, b.repeats - 1, b.stride.bit_length() - 1]
                for b in self.blocks
            ],
        ]


def _integer(value: object, where: str) -> int:
    """``value`` as an int: integral numbers only (``1.7``, ``1e400``, booleans refused)."""
    if isinstance(value, bool):
        raise GenotypeError(f"{where}: {value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,9}", value.strip()):
        return int(value)
    raise GenotypeError(f"{where}: {value!r} is not an integer")


@dataclass(frozen=True)
class SearchSpace:
    """Sizes and choices of the search space (the paper's defaults: M=3, N=7, repeats 1..4)."""

    num_templates: int = 3
    num_blocks: int = 7
    max_repeats: int = 4
    ops: tuple[str, ...] = OPS
    aggregations: tuple[str, ...] = AGGREGATIONS
    num_stem_outputs: int = NUM_STEM_OUTPUTS
    strides: tuple[int, ...] = field(default=(1, 2))

    def __post_init__(self) -> None:
        for name in ("num_templates", "num_blocks", "max_repeats"):
            if getattr(self, name) < 1:
                raise GenotypeError(f"search space: {name} must be >= 1, got {getattr(self, name)}")
        unknown = [op for op in self.ops if op not in OPS]
        if unknown:
            raise GenotypeError(f"search space: unknown operations {unknown}; choose from {OPS}")
        bad_aggs = [a for a in self.aggregations if a not in AGGREGATIONS]
        if bad_aggs:
            raise GenotypeError(
                f"search space: unknown aggregations {bad_aggs}; choose from {AGGREGATIONS}"
            )

    @property
    def num_strided_blocks(self) -> int:
        """Blocks that may use stride 2: the first floor(N / 2)."""
        return self.num_blocks // 2

    def pool_size(self, block_index: int) -> int:
        """Number of pool entries block ``block_index`` may read."""
        return self.num_stem_outputs + block_index

    def stride_choices(self, block_index: int) -> tuple[int, ...]:
        """Strides allowed in block ``block_index``."""
        return self.strides if block_index < self.num_strided_blocks else (1,)

    @property
    def num_decisions(self) -> int:
        """Decisions that describe one architecture (fixed strides count as none)."""
        return 3 * self.num_templates + 4 * self.num_blocks + self.num_strided_blocks

    def validate(self, genotype: Genotype) -> Genotype:
        """Raise :class:`GenotypeError` naming the offending field and value, else return it."""
        if len(genotype.templates) != self.num_templates:
            raise GenotypeError(
                f"expected {self.num_templates} templates, got {len(genotype.templates)}"
            )
        if len(genotype.blocks) != self.num_blocks:
            raise GenotypeError(f"expected {self.num_blocks} blocks, got {len(genotype.blocks)}")
        for i, t in enumerate(genotype.templates):
            for name in ("op1", "op2"):
                value = getattr(t, name)
                if value not in self.ops:
                    raise GenotypeError(
                        f"templates[{i}].{name}: unknown operation {value!r}; "
                        f"choose from {list(self.ops)}"
                    )
            if t.agg not in self.aggregations:
                raise GenotypeError(
                    f"templates[{i}].agg: unknown aggregation {t.agg!r}; "
                    f"choose from {list(self.aggregations)}"
                )
        for i, b in enumerate(genotype.blocks):
            pool = self.pool_size(i)
            for name in ("loc1", "loc2"):
                value = getattr(b, name)
                if not isinstance(value, int) or not 0 <= value < pool:
                    raise GenotypeError(
                        f"blocks[{i}].{name}: location {value!r} is outside the pool "
                        f"(block {i} can read 0..{pool - 1})"
                    )
            if not isinstance(b.template, int) or not 0 <= b.template < self.num_templates:
                raise GenotypeError(
                    f"blocks[{i}].template: {b.template!r} is not a template index "
                    f"0..{self.num_templates - 1}"
                )
            if not isinstance(b.repeats, int) or not 1 <= b.repeats <= self.max_repeats:
                raise GenotypeError(
                    f"blocks[{i}].repeats: {b.repeats!r} is outside 1..{self.max_repeats}"
                )
            allowed = self.stride_choices(i)
            if b.stride not in allowed:
                where = (
                    f"only the first {self.num_strided_blocks} blocks may use stride 2"
                    if b.stride == 2
                    else f"allowed strides are {list(allowed)}"
                )
                raise GenotypeError(f"blocks[{i}].stride: {b.stride!r} not allowed; {where}")
        return genotype

    def _blocks(self, blocks_raw: Sequence, release: bool = False) -> tuple[Block, ...]:
        """Blocks from raw values, each checked to be an integer (never truncated)."""
        names = ("loc1", "loc2", "template", "repeats", "stride")
        blocks = []
        for i, raw in enumerate(blocks_raw):
            if len(raw) != len(names):
                raise GenotypeError(f"blocks[{i}] must have {len(names)} values {names}: {raw!r}")
            values = [_integer(v, f"blocks[{i}].{n}") for n, v in zip(names, raw, strict=True)]
            if release:
                if not 0 <= values[4] <= 8:
                    raise GenotypeError(f"blocks[{i}].stride: log2 stride {values[4]} not allowed")
                values = [*values[:3], values[3] + 1, 2 ** values[4]]
            blocks.append(Block(*values))
        return tuple(blocks)

    def from_list(self, data: Sequence) -> Genotype:
        """Build and validate a genotype from its JSON form (op names, real repeats/stride)."""
        try:
            templates_raw, blocks_raw = data
            templates = tuple(Template(*map(str, t)) for t in templates_raw)
            blocks = self._blocks(blocks_raw)
        except GenotypeError:
            raise
        except (TypeError, ValueError) as exc:
            raise GenotypeError(
                "a genotype is [[[op1, op2, agg], ...], [[loc1, loc2, template, repeats, "
                f"stride], ...]]; could not read {data!r} ({exc})"
            ) from exc
        return self.validate(Genotype(templates, blocks))

    def from_json(self, text: str) -> Genotype:
        """Parse the JSON form."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenotypeError(f"genotype JSON is malformed: {exc}: {text!r}") from exc
        if not isinstance(data, list):
            kind = "an object" if isinstance(data, dict) else f"a {type(data).__name__}"
            keys = f" (keys {', '.join(map(str, data))})" if isinstance(data, dict) else ""
            raise GenotypeError(
                f"genotype JSON {text!r} is {kind}{keys}, not a list: the JSON form is "
                "[[[op1, op2, agg], ...], [[loc1, loc2, template, repeats, stride], ...]], "
                "as `segnas arch sample --format json` prints"
            )
        return self.from_list(data)

    _BLOCK_RE = re.compile(r"^(\d+)-(\d+)-t(\d+)-r(\d+)-s(\d+)$")

    def from_text(self, text: str) -> Genotype:
        """Parse the readable form produced by :meth:`Genotype.to_text`."""
        match = re.fullmatch(r"\s*T:(\S+)\s+B:(\S+)\s*", text)
        if not match:
            raise GenotypeError(
                f"genotype text {text!r} is not of the form "
                "'T:op1+op2@agg,... B:loc1-loc2-tT-rR-sS,...'"
            )
        templates = []
        for i, part in enumerate(match.group(1).split(",")):
            ops, _, agg = part.partition("@")
            op1, _, op2 = ops.partition("+")
            if not (op1 and op2 and agg):
                raise GenotypeError(f"template {i} {part!r} is not of the form op1+op2@agg")
            templates.append(Template(op1, op2, agg))
        blocks = []
        for i, part in enumerate(match.group(2).split(",")):
            found = self._BLOCK_RE.match(part)
            if not found:
                raise GenotypeError(f"block {i} {part!r} is not of the form loc1-loc2-tT-rR-sS")
            blocks.append(Block(*(int(v) for v in found.groups())))
        return self.validate(Genotype(tuple(templates), tuple(blocks)))

    def from_record(self, record: Mapping[str, object], where: str) -> Genotype:
        """The genotype of a stored record (:meth:`Genotype.to_record`), its hash checked;
        ``where`` names the file in errors. Records of files written before the text form
        (the JSON list form) are read too, so a search begun then resumes."""
        stored = record.get("genotype")
        try:
            if isinstance(stored, list):
                genotype = self.from_list(stored)
            else:
                genotype = self.from_text(str(stored))
        except GenotypeError as exc:
            raise GenotypeError(
                f"{where}: no readable genotype in {record!r} ({exc}); the file was edited or "
                "damaged: delete it and rerun"
            ) from exc
        if genotype.hash != record.get("hash"):
            raise GenotypeError(
                f"{where}: genotype {stored!r} has hash {genotype.hash}, not the stored "
                f"{record.get('hash')!r}; the file was edited or damaged: delete it and rerun"
            )
        return genotype

    def parse(self, text: str) -> Genotype:
        """Parse either the readable text form or the JSON form."""
        json_like = text.lstrip().startswith(("[", "{"))
        return self.from_json(text) if json_like else self.from_text(text)

    def from_release(self, data: Sequence) -> Genotype:
        """Read the released code's integer encoding (op/agg indices, repeats-1, log2 stride)."""
        try:
            templates_raw, blocks_raw = data
            templates = []
            for i, (op1, op2, agg) in enumerate(templates_raw):
                for name, index, table in (
                    ("op1", op1, self.ops),
                    ("op2", op2, self.ops),
                    ("agg", agg, self.aggregations),
                ):
                    if not 0 <= int(index) < len(table):
                        raise GenotypeError(
                            f"templates[{i}].{name}: index {index} is outside 0..{len(table) - 1}"
                        )
                templates.append(Template(self.ops[op1], self.ops[op2], self.aggregations[agg]))
            blocks = self._blocks(blocks_raw, release=True)
        except GenotypeError:
            raise
        except (TypeError, ValueError) as exc:
            raise GenotypeError(f"not a release encoding [templates, blocks]: {data!r}") from exc
        return self.validate(Genotype(tuple(templates), tuple(blocks)))

    def sample(self, rng: random.Random | int) -> Genotype:
        """Sample a valid genotype uniformly per decision (the random-search baseline)."""
        rng = random.Random(rng) if isinstance(rng, int) else rng
        templates = tuple(
            Template(rng.choice(self.ops), rng.choice(self.ops), rng.choice(self.aggregations))
            for _ in range(self.num_templates)
        )
        blocks = []
        for i in range(self.num_blocks):
            pool = self.pool_size(i)
            blocks.append(
                Block(
                    rng.randrange(pool),
                    rng.randrange(pool),
                    rng.randrange(self.num_templates),
                    rng.randint(1, self.max_repeats),
                    rng.choice(self.stride_choices(i)),
                )
            )
        return Genotype(templates, tuple(blocks))


DEFAULT_SPACE = SearchSpace()
