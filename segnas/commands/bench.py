"""``segnas bench``: inference latency and training-step time against the GEMM floor."""

from __future__ import annotations

import argparse
import platform

import torch

from .. import bench
from ..device import device_name, keep_freed_memory, resolve_device
from ..errors import ConfigError
from ..io import write_json
from ..progress import Progress
from .arch import non_negative_int, parse_size, positive_int


def _header(args: argparse.Namespace, device: torch.device, kept_freed_memory: bool) -> list[str]:
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "not installed"
    return [
        f"device: {device_name(device)}",
        f"python {platform.python_version()}, torch {torch.__version__}, onnxruntime {ort_version}",
        f"threads: {torch.get_num_threads()}, warm-up {args.warmup}, repeats {args.repeats}, "
        f"GEMM {bench.GEMM_SIZE}x{bench.GEMM_SIZE} interleaved with every timed run",
        "malloc: freed memory kept for reuse"
        if kept_freed_memory
        else "malloc: system default (freed memory returned to the system)",
    ]


def _run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    kept = keep_freed_memory()
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    if args.batch < 1 or args.repeats < 1 or args.warmup < 0:
        raise ConfigError("--batch and --repeats must be at least 1, --warmup at least 0")
    with bench.num_threads(args.threads):
        load_before = bench.load_average()
        results = []
        if args.mode == "latency":
            paths = (["plain"] if args.plain else []) + args.backend
            jobs = [(a, s, p) for a in args.arch for s in args.size for p in paths]
        else:
            jobs = [
                (a, s, "plain" if plain else "channels_last")
                for a in args.arch
                for s in args.size
                for plain in ([True, False] if args.plain else [False])
            ]
        progress = Progress(f"bench {args.mode}", len(jobs), interval=0.0)
        models: dict[str, torch.nn.Module] = {}
        for arch, size, path in jobs:
            if arch not in models:
                models[arch] = bench.bench_model(arch, args.search, args.classes, args.seed)
            model = models[arch]
            if args.mode == "latency":
                result = bench.bench_latency(
                    model, arch, size, args.batch, path, device, args.warmup, args.repeats
                )
            else:
                result = bench.bench_train(
                    model,
                    arch,
                    size,
                    args.batch,
                    args.classes,
                    path == "plain",
                    device,
                    args.warmup,
                    args.repeats,
                )
            results.append(result)
            progress.update(
                extra=f"{arch} {size[0]}x{size[1]} {path}: "
                f"{result.timing.median_ms:.1f} ms, {result.ratio:.2f}x floor"
            )
        header = _header(args, device, kept)
    header.append(f"load average (1/5/15 min): {load_before} before, {bench.load_average()} after")
    print("\n".join(header))
    print()
    print(bench.format_table(results))
    best = min(results, key=lambda r: r.ratio)
    print(
        f"\n{len(results)} configurations; best ratio to the floor {best.ratio:.2f} "
        f"({best.arch} {best.size[0]}x{best.size[1]} {best.path})"
    )
    if args.json:
        write_json(args.json, {"header": header, "results": [r.to_dict() for r in results]})
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench latency|train``."""
    parser = subparsers.add_parser(
        "bench", help="time inference or training steps against the machine's GEMM floor"
    )
    parser.add_argument("mode", choices=("latency", "train"), help="what to time")
    parser.add_argument(
        "--arch", nargs="+", default=["arch0"], help="arch0, arch1 or genotype texts"
    )
    parser.add_argument(
        "--size",
        nargs="+",
        type=parse_size,
        default=None,
        help="input sizes HxW (default 360x480 for latency, 321x321 for train)",
    )
    parser.add_argument("--threads", type=positive_int, default=None, help="intra-op CPU threads")
    parser.add_argument(
        "--batch", type=positive_int, default=None, help="batch size (default 1 latency, 8 train)"
    )
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=bench.LATENCY_PATHS[1:],
        default=["auto"],
        help="optimised inference backends to time (default auto)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="also time the plain model (eager NCHW, BatchNorm unfolded) for reference",
    )
    parser.add_argument(
        "--search",
        action="store_true",
        default=None,
        help="search-time widths (48, 1 unit); default for train, final widths for latency",
    )
    parser.add_argument(
        "--final", dest="search", action="store_false", help="final widths (64, 2 units)"
    )
    parser.add_argument(
        "--classes", type=positive_int, default=19, help="number of classes (default 19)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument(
        "--warmup", type=non_negative_int, default=3, help="untimed runs first (default 3)"
    )
    parser.add_argument("--repeats", type=positive_int, default=10, help="timed runs (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="weights and inputs seed")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    if args.size is None:
        args.size = [(360, 480)] if args.mode == "latency" else [(321, 321)]
    if args.batch is None:
        args.batch = 1 if args.mode == "latency" else 8
    if args.search is None:
        args.search = args.mode == "train"
    return _run(args)
