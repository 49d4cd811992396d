"""Digests of stage outputs that leave out wall-clock measurements (``segnas repro-hash``)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ..config import flatten
from ..errors import SegnasError
from ..io import read_json, sha256_file, sha256_json
from ..provenance import KEY as PROVENANCE
from .stages import metric_files, stage_outputs

# Files an engine writes into output directories for its own bookkeeping.
IGNORED_NAMES = frozenset({".snakemake_timestamp"})
# Wall-clock measurements (durations, latencies, timestamps) cannot repeat bit for bit; the
# output hashes leave out JSON keys, CSV/TSV columns and checkpoint entries with these names.
VOLATILE = re.compile(
    r"(^|_)(seconds|secs|sec|ms|time|timestamp|elapsed|duration|latency|date)(_|$)"
)
# The run's provenance block (``segnas.provenance``: commit, packages, device) says where a result
# came from, not what it is: digests and reference metrics leave it out, as they do timings.
# Documents that render wall-clock measurements in prose/tables/plots: compared for presence
# only.
MEASUREMENT_DOCUMENTS = frozenset(
    {"report/report.html", "report/report.md", "report/figures/pareto_latency.png"}
)


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    found = [p for p in path.rglob("*") if p.is_file() and p.name not in IGNORED_NAMES]
    return sorted(found, key=lambda p: p.as_posix())


def _strip_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_volatile(v)
            for k, v in value.items()
            if not (isinstance(k, str) and (VOLATILE.search(k) or k == PROVENANCE))
        }
    if isinstance(value, (list, tuple)):
        return [_strip_volatile(v) for v in value]
    return value


def _tensor_safe(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return hashlib.sha256(value.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    if isinstance(value, dict):
        return {str(k): _tensor_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tensor_safe(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)


def canonical_digest(path: str | Path) -> str:
    """SHA-256 of a file's content without its wall-clock measurements (see ``VOLATILE``).

    JSON: volatile keys dropped, at any depth. CSV/TSV: volatile columns dropped. Checkpoints
    (``.pt``, loaded with ``weights_only=True``): tensors by their bytes, volatile keys dropped.
    Anything else: the raw bytes.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            return sha256_json(_strip_volatile(data))
        if suffix in (".csv", ".tsv"):
            delimiter = "\t" if suffix == ".tsv" else ","
            rows = list(
                csv.reader(path.read_text(encoding="utf-8").splitlines(), delimiter=delimiter)
            )
            if rows:
                keep = [i for i, name in enumerate(rows[0]) if not VOLATILE.search(name)]
                rows = [[row[i] for i in keep if i < len(row)] for row in rows]
            return sha256_json(rows)
        if suffix == ".pt":
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
            return sha256_json(_strip_volatile(_tensor_safe(state)))
    except (ValueError, UnicodeDecodeError, RuntimeError, OSError):
        pass
    return sha256_file(path)


def tree_digest(root: str | Path, outputs: list[str]) -> tuple[str, dict[str, str]]:
    """(combined SHA-256, {relative file: SHA-256}) over the files of ``outputs``."""
    root = Path(root)
    files: dict[str, str] = {}
    for out in outputs:
        if not (root / out).exists():
            raise SegnasError(f"{root / out} does not exist; the stage has not run there")
        for file in _files_under(root / out):
            relative = file.relative_to(root).as_posix()
            files[relative] = (
                "measurement-document"
                if relative in MEASUREMENT_DOCUMENTS
                else canonical_digest(file)
            )
    combined = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return combined, files


def stage_hashes(root: str | Path = ".") -> dict[str, dict[str, Any]]:
    """``{stage: {"sha256": ..., "files": {path: sha256}}}`` for every registered stage."""
    result = {}
    for stage, outs in stage_outputs().items():
        digest, files = tree_digest(root, outs)
        result[stage] = {"sha256": digest, "files": files}
    return result


def numeric_metrics(root: str | Path = ".") -> dict[str, float]:
    """``{"<file>:<dotted key>": value}`` for every number in the declared metrics files
    (wall-clock measurements left out, see ``VOLATILE``)."""
    values: dict[str, float] = {}
    for name in metric_files():
        data = read_json(Path(root) / name)
        if not isinstance(data, dict):
            continue
        for key, value in flatten(_strip_volatile(data)).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values[f"{name}:{key}"] = float(value)
    return values
