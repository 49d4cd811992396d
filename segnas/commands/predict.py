"""``segnas predict IMAGE... --model CKPT``: colourised masks and overlays."""

from __future__ import annotations

import argparse

from ..device import resolve_device
from ..predict import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, predict_files
from .arch import parse_size, positive_int


def _predict(args: argparse.Namespace) -> int:
    written = predict_files(
        args.images,
        args.model,
        args.out,
        resolve_device(args.device),
        input_size=args.size,
        optimized=not args.plain,
        overwrite=args.overwrite,
        max_pixels=args.max_pixels,
    )
    for item in written:
        print(f"{item.image} -> {item.mask}, {item.overlay}")
    print(f"predict: {len(written)} image(s) -> {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``predict``."""
    parser = subparsers.add_parser(
        "predict", help="segment images with a trained model; write masks and overlays"
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="input image files")
    parser.add_argument("--model", required=True, help="training checkpoint (models/NAME/best.pt)")
    parser.add_argument("--out", default="predictions", help="output folder (default predictions)")
    parser.add_argument(
        "--size", type=parse_size, default=None, help="resize inputs to HxW (default: as trained)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--plain", action="store_true", help="skip the optimised inference path")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing mask/overlay files in --out (never an input image)",
    )
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"largest image read, in pixels (default ${MAX_PIXELS_ENV} or {DEFAULT_MAX_PIXELS})",
    )
    parser.set_defaults(func=_predict)
