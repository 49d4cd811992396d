"""Integrity of stored artifacts (issue 29, item 5): checksums verified when an artifact is
opened, zip CRCs and finite tensors when a checkpoint is loaded, a failed ONNX check an error.
Each case runs through the stage a user runs, with the params file on disk."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from search_project import make_project, run_stage, tiny_params, tiny_train, write_params

from segnas import integrity
from segnas.io import save_torch


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data stages run and arch0 trained for 2 tiny epochs (models/arch0/{last,best}.pt)."""
    root = make_project(tmp_path_factory.mktemp("integrity") / "p", tiny_train(tiny_params()))
    assert run_stage(root, "train") == 0
    return root


def _overwrite(path: Path, offset: int, count: int) -> bytes:
    """Overwrite ``count`` bytes of ``path`` at ``offset`` (same size and name); the old bytes."""
    data = bytearray(path.read_bytes())
    old = bytes(data[offset : offset + count])
    data[offset : offset + count] = bytes(255 - b for b in old)
    path.write_bytes(bytes(data))
    return old


def _largest_member_offset(path: Path) -> tuple[str, int]:
    """(name, offset of its data in the file) of the largest member of a torch zip archive."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
        with path.open("rb") as handle:
            handle.seek(info.header_offset + 26)
            name_len, extra_len = (int.from_bytes(handle.read(2), "little") for _ in range(2))
    return info.filename, info.header_offset + 30 + name_len + extra_len


@pytest.mark.parametrize("array", ["quarter", "eighth"])
def test_a_stem_cache_array_with_a_wrong_checksum_stops_the_search(
    project: Path, capsys: pytest.CaptureFixture[str], array: str
) -> None:
    path = project / "cache" / "stem" / f"{array}.npy"
    old = _overwrite(path, path.stat().st_size // 2, 64)
    try:
        capsys.readouterr()
        assert run_stage(project, "search") == 2
        err = capsys.readouterr().err
        assert f"cache/stem/{array}.npy: sha256 is '" in err and "rerun the cache_stem" in err, err
        assert not list((project / "search").rglob("e*.json"))  # no evaluation ran
    finally:
        data = bytearray(path.read_bytes())
        offset = path.stat().st_size // 2
        data[offset : offset + 64] = old
        path.write_bytes(bytes(data))


def test_verified_files_are_hashed_once_per_version(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 1000)
    good = integrity.sha256_file(path)
    calls = []
    monkeypatch.setattr(integrity, "sha256_file", lambda p: calls.append(p) or good)
    assert integrity.sha256_mismatch(path, good) is None
    assert integrity.sha256_mismatch(path, good) is None
    assert len(calls) == 1
    path.write_bytes(b"y" * 1000)  # a new version (mtime) is hashed again
    monkeypatch.undo()
    assert integrity.sha256_mismatch(path, good) == integrity.sha256_file(path)


def _stage_error(project: Path, capsys, stage: str) -> str:
    capsys.readouterr()
    assert run_stage(project, stage) == 2
    return capsys.readouterr().err


def test_a_garbled_weight_tensor_in_a_checkpoint_stops_evaluate(project: Path, capsys) -> None:
    best = project / "models" / "arch0" / "best.pt"
    original = best.read_bytes()
    member, offset = _largest_member_offset(best)
    _overwrite(best, offset + 100, 400)
    try:
        err = _stage_error(project, capsys, "evaluate")
        assert f"models/arch0/best.pt: its archive member {member} fails its CRC-32" in err, err
        assert "rerun the train stage" in err
        assert not (project / "results" / "metrics.json").exists()
    finally:
        best.write_bytes(original)


@pytest.mark.parametrize(("name", "stage"), [("best.pt", "evaluate"), ("last.pt", "train")])
def test_a_checkpoint_with_a_nan_tensor_is_refused_at_load(
    project: Path, capsys, name: str, stage: str
) -> None:
    path = project / "models" / "arch0" / name
    original = path.read_bytes()
    payload = torch.load(path, weights_only=True)
    key = next(k for k, v in payload["model"].items() if v.is_floating_point() and v.dim() == 1)
    payload["model"][key][0] = float("nan")
    save_torch(path, payload)
    try:
        err = _stage_error(project, capsys, stage)
        assert f"models/arch0/{name}: tensor model.{key} (1 of " in err, err
        assert "is NaN or infinite" in err
    finally:
        path.write_bytes(original)


def test_a_failed_onnx_check_is_an_error_and_leaves_no_export(project: Path, capsys) -> None:
    params = tiny_train(tiny_params())
    params["evaluate"]["onnx_tolerance"] = 1.0e-12
    write_params(project, params)
    try:
        err = _stage_error(project, capsys, "evaluate")
        assert "its ONNX export differs from PyTorch by max |diff|" in err, err
        assert "evaluate.onnx_tolerance 1e-12" in err
        assert not (project / "results" / "arch0" / "model.onnx").exists()
    finally:
        write_params(project, tiny_train(tiny_params()))
