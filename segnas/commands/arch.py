"""``segnas arch``: show, sample and validate architecture descriptions."""

from __future__ import annotations

import argparse
import json
import math

from ..complexity import count_flops, count_params, output_stride, state_dict_bytes
from ..errors import ConfigError
from ..model import FINAL_CONFIG, SEARCH_CONFIG, build_model
from ..published import resolve_genotype
from ..space import DEFAULT_SPACE, Genotype

MAX_SIDE = 4096  # pixels per side of an HxW size option (4x the paper's 1024x2048 height)


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` -> (H, W), each side in 8..MAX_SIDE."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size {text!r} is not HxW, e.g. 360x480") from exc
    if height < 8 or width < 8:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 8x8)")
    if height > MAX_SIDE or width > MAX_SIDE:
        raise argparse.ArgumentTypeError(
            f"size {text!r} is too large (at most {MAX_SIDE}x{MAX_SIDE}); give a smaller HxW"
        )
    return height, width


def _whole_number(text: str, minimum: int, requirement: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} must be {requirement}")
    return value


def positive_int(text: str) -> int:
    """A count or size option: a whole number of at least 1."""
    return _whole_number(text, 1, "at least 1")


def tolerance(text: str) -> float:
    """A tolerance option: a finite number of at least 0 (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of at least 0")
    return value


def non_negative_int(text: str) -> int:
    """A count option that may be 0 (e.g. warm-up runs)."""
    return _whole_number(text, 0, "0 or more")


def describe(genotype: Genotype) -> str:
    """A readable multi-line structure of ``genotype``."""
    lines = ["templates:"]
    for i, t in enumerate(genotype.templates):
        lines.append(f"  t{i}: {t.op1} + {t.op2} -> {t.agg}")
    lines.append("pool: p0 = stem 1/4 (24 ch), p1 = stem 1/8 (32 ch)")
    lines.append("blocks:")
    for i, b in enumerate(genotype.blocks):
        lines.append(
            f"  p{i + 2} = t{b.template}(p{b.loc1}, p{b.loc2}) x{b.repeats}"
            + (" stride 2" if b.stride == 2 else "")
        )
    return "\n".join(lines)


MAX_CLASSES = 255  # label value 255 marks ignored pixels


def _show(args: argparse.Namespace) -> int:
    if not 1 <= args.classes <= MAX_CLASSES:
        raise ConfigError(
            f"--classes {args.classes} is outside 1..{MAX_CLASSES} (label value 255 marks "
            "ignored pixels); give the number of classes of your dataset"
        )
    genotype = resolve_genotype(args.arch)
    widths = SEARCH_CONFIG if args.search else FINAL_CONFIG
    model = build_model(genotype, num_classes=args.classes, **widths).eval()
    decoder_params = count_params(model.decoder)
    total = count_params(model)
    flops = count_flops(model, args.size)
    print(f"genotype: {genotype.to_text()}")
    print(f"release:  {json.dumps(genotype.to_release())}")
    print(f"hash:     {genotype.hash}")
    print(describe(genotype))
    print(f"widths: aggregation {widths['agg_width']}, sep_conv units {widths['sep_conv_units']}")
    print(f"classes: {args.classes}")
    print(f"decoder+head parameters: {decoder_params:,}")
    print(f"stem parameters:         {total - decoder_params:,}")
    print(f"total parameters:        {total:,}")
    print(f"FLOPs at {args.size[0]}x{args.size[1]}: {flops / 1e9:.3f} G")
    print(f"output stride: {output_stride(model, args.size):g}")
    print(f"downsampling factor (2^strided blocks): {genotype.downsampling_factor}")
    print(f"state dict size: {state_dict_bytes(model) / 1024:.1f} KiB")
    return 0


def _sample(args: argparse.Namespace) -> int:
    import random

    rng = random.Random(args.seed)
    for _ in range(args.count):
        genotype = DEFAULT_SPACE.sample(rng)
        if args.format == "json":
            print(genotype.to_json())
        elif args.format == "release":
            print(json.dumps(genotype.to_release()))
        else:
            print(genotype.to_text())
    return 0


def _validate(args: argparse.Namespace) -> int:
    genotype = resolve_genotype(args.arch)
    print(f"valid: {genotype.to_text()} (hash {genotype.hash})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``arch show|sample|validate``."""
    arch = subparsers.add_parser("arch", help="show, sample and validate architectures")
    sub = arch.add_subparsers(dest="arch_command", required=True, metavar="ACTION")

    show = sub.add_parser("show", help="print a genotype, its structure, parameters and FLOPs")
    show.add_argument("arch", help="arch0, arch1, a genotype text 'T:... B:...' or JSON")
    show.add_argument("--classes", type=int, default=19, help="number of classes (default 19)")
    show.add_argument(
        "--size", type=parse_size, default=(360, 480), help="input HxW for FLOPs (default 360x480)"
    )
    show.add_argument(
        "--search", action="store_true", help="search-time widths (48, 1 unit) instead of final"
    )
    show.set_defaults(func=_show)

    sample = sub.add_parser("sample", help="sample random valid genotypes (seeded)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.add_argument("--count", type=positive_int, default=1, help="how many (default 1)")
    sample.add_argument("--format", choices=("text", "json", "release"), default="text")
    sample.set_defaults(func=_sample)

    validate = sub.add_parser("validate", help="check a genotype and print its canonical form")
    validate.add_argument("arch", help="arch0, arch1, a genotype text or JSON")
    validate.set_defaults(func=_validate)
