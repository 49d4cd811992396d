"""Issue 29, items 3, 4 and 5 through the user's entry point: each stage run as
``python stages/<stage>.py --params params.yaml`` in its own process, on a params file written
as a user writes it (flow-style lists, comments) and edited line by line, never rebuilt from a
dict. In-process tests share caches and objects with the test; these do not."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from search_project import make_project, stage_env, tiny_params, tiny_train

from segnas.io import read_json, save_torch

CONTROLLER = Path("search") / "controller" / "final.pt"


def _write_as_user(root: Path, params: dict) -> None:
    """params.yaml as a person writes it: lists inline (``[32, 32]``), a comment on top."""
    text = yaml.safe_dump(params, sort_keys=False, default_flow_style=None, width=200)
    (root / "params.yaml").write_text("# tiny project\n" + text, encoding="utf-8")


def edit_param(root: Path, dotted: str, value: str) -> None:
    """Replace the value of ``dotted`` (``section.key`` or ``section.sub.key``) in params.yaml
    in place, as an editor does: only that line changes, ``value`` is YAML text."""
    path = root / "params.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    *parents, last = dotted.split(".")
    start, indent = 0, 0
    for name in parents:
        pattern = re.compile(rf"^{' ' * indent}{re.escape(name)}:\s*(#.*)?$")
        start = next(i for i in range(start, len(lines)) if pattern.match(lines[i])) + 1
        indent += 2
    pattern = re.compile(rf"^({' ' * indent}{re.escape(last)}:) \S.*?(\s+#.*)?$")
    for i in range(start, len(lines)):
        if match := pattern.match(lines[i].rstrip("\n")):
            lines[i] = f"{match[1]} {value}{match[2] or ''}\n"
            path.write_text("".join(lines), encoding="utf-8")
            return
        if lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) < indent:
            break
    raise AssertionError(f"{dotted} is not in {path}")


def run_entry(root: Path, stage: str) -> subprocess.CompletedProcess[str]:
    """``python stages/<stage>.py --params params.yaml`` in ``root``, its own process."""
    env = stage_env()
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, f"stages/{stage}.py", "--params", "params.yaml"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _ok(root: Path, stage: str) -> str:
    done = run_entry(root, stage)
    assert done.returncode == 0, f"{stage}: {done.stderr[-3000:]}"
    return done.stderr


def _refused(root: Path, stage: str) -> str:
    done = run_entry(root, stage)
    assert done.returncode == 2, f"{stage} exited {done.returncode}: {done.stderr[-3000:]}"
    return done.stderr


def _params(rounds: int = 1) -> dict:
    params = tiny_train(tiny_params(rounds=rounds))
    params["compare"].update(num_archs=2, workers=1, long_phase2_epochs=1)
    return params


def _project(root: Path, rounds: int = 1) -> Path:
    make_project(root, _params(rounds))  # prepare, split, cache_stem
    _write_as_user(root, _params(rounds))
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project with search (1 round), compare (N = 2) and train (arch0, 2 epochs) run
    through their entry points. Tests restore what they change."""
    root = _project(tmp_path_factory.mktemp("entry") / "p")
    for stage in ("search", "compare", "train"):
        _ok(root, stage)
    return root


@pytest.fixture
def params_restored(project: Path):
    original = (project / "params.yaml").read_bytes()
    yield project
    (project / "params.yaml").write_bytes(original)


# ------------------------------------------------------------- item 3: search identity


def test_more_rounds_continue_a_search_and_train_names_only_the_changed_key(tmp_path):
    """Issue 29, item 3: raising only search.rounds in params.yaml continues the search (the
    identity read back from state.json, JSON lists, equals today's); train's refusal of the
    search after search.seed changes names search.seed alone (no list/tuple keys)."""
    root = _project(tmp_path / "p")
    _ok(root, "search")
    kept = root / "search" / "rounds" / "r00000" / "e0001.json"
    before = read_json(kept)["result"]
    edit_param(root, "search.rounds", "2")
    err = _ok(root, "search")
    assert "continuing the search" in err and "(search.rounds 1 -> 2)" in err, err
    assert "held a search with other params" not in err, err
    assert not list((root / "search").glob(".previous-*"))
    assert read_json(kept)["result"] == before  # kept (re-stamped), not evaluated again
    edit_param(root, "train.architectures", "[]")  # train reads the search's top 1
    edit_param(root, "train.top_k", "1")
    edit_param(root, "search.seed", "7")
    err = _refused(root, "train")
    reason = re.search(r"other params than params\.yaml \(([^)]*)\)", err)
    assert reason and reason[1] == "search.seed 0 -> 7", err


# ------------------------------------------------------------- item 4: stale upstream


@pytest.mark.parametrize(
    ("stage", "dotted", "value", "shown"),
    [
        ("compare", "search.eval.lr_decoder", "0.005", "(search.eval.lr_decoder 0.002 -> 0.005)"),
        ("report", "search.seed", "7", "(search.seed 0 -> 7)"),
        ("evaluate", "train.epochs", "3", "(train.epochs 2 -> 3)"),
    ],
)
def test_a_stage_refuses_upstream_output_of_other_params_naming_the_keys(
    params_restored, stage, dotted, value, shown
):
    """Issue 29, item 4: compare (reads the search), report (reads search and compare) and
    evaluate (reads models/) each check what they read against today's params.yaml."""
    edit_param(params_restored, dotted, value)
    err = _refused(params_restored, stage)
    assert "other" in err and shown in err, err


# ------------------------------------------------------------- item 5: damaged artifacts


def _flip(path: Path, offset: int, count: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset : offset + count] = bytes(255 - b for b in data[offset : offset + count])
    path.write_bytes(bytes(data))


@pytest.fixture
def restored(project: Path):
    """Files saved by name, written back after the test."""
    saved: dict[Path, bytes] = {}

    def keep(relative: Path | str) -> Path:
        path = project / relative
        saved[path] = path.read_bytes()
        return path

    yield keep
    for path, data in saved.items():
        path.write_bytes(data)


def _largest_member_offset(path: Path) -> tuple[str, int]:
    """(name, offset of its bytes) of the largest tensor storage in a torch zip archive (the
    weights, not the pickle that torch.load would fail on anyway)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        storages = [i for i in archive.infolist() if "/data/" in i.filename]
        info = max(storages, key=lambda i: i.file_size)
    with path.open("rb") as handle:
        handle.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(handle.read(2), "little") for _ in range(2))
    return info.filename, info.header_offset + 30 + name_len + extra_len


@pytest.mark.parametrize(
    ("relative", "stage"),
    [(CONTROLLER, "compare"), (Path("models/arch0/best.pt"), "evaluate")],
)
def test_a_checkpoint_with_garbled_bytes_is_refused(project, restored, relative, stage):
    """Issue 29, item 5: a torch archive whose member fails its zip CRC stops the stage that
    reads it (the controller in compare, a trained model in evaluate)."""
    path = restored(relative)
    member, offset = _largest_member_offset(path)
    _flip(path, offset + 16, 64)
    err = _refused(project, stage)
    assert f"{relative.as_posix()}: its archive member {member} fails its CRC-32" in err, err


def _float_tensors(value: object, name: str = ""):
    """(dotted name, tensor) of every floating tensor under nested dicts."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _float_tensors(item, f"{name}.{key}" if name else str(key))


@pytest.mark.parametrize(
    ("relative", "stage"),
    [(CONTROLLER, "compare"), (Path("models/arch0/best.pt"), "evaluate")],
)
def test_a_checkpoint_with_a_nan_tensor_is_refused(project, restored, relative, stage):
    """Issue 29, item 5: a NaN in a stored tensor stops the stage at load (evaluate used to
    exit 0 with NaN scores)."""
    path = restored(relative)
    payload = torch.load(path, weights_only=True)
    key, tensor = next(_float_tensors(payload))
    tensor[(0,) * tensor.dim()] = float("nan")
    save_torch(path, payload)
    err = _refused(project, stage)
    assert f"{relative.as_posix()}: tensor " in err and "is NaN or infinite" in err, err
    assert key in err, err


@pytest.mark.parametrize(("array", "stage"), [("labels", "compare"), ("quarter", "search")])
def test_a_stem_cache_array_that_fails_its_checksum_is_refused(
    project, restored, params_restored, tmp_path, array, stage
):
    """Issue 29, item 5: an array overwritten in place (same size) fails header.json's sha256
    in every stage that reads the cache; nothing is evaluated from it."""
    path = restored(f"cache/stem/{array}.npy")
    _flip(path, path.stat().st_size - 64, 32)
    for name in ("search", "compare"):
        shutil.copytree(project / name, tmp_path / name, symlinks=True)
    if stage == "search":
        edit_param(params_restored, "search.rounds", "2")  # one more round would read it
    else:
        shutil.rmtree(project / "compare")  # evaluated again, from the cache
    try:
        err = _refused(project, stage)
    finally:
        for name in ("search", "compare"):
            shutil.rmtree(project / name, ignore_errors=True)
            shutil.copytree(tmp_path / name, project / name, symlinks=True)
    assert f"cache/stem/{array}.npy: sha256 is '" in err and "rerun the cache_stem" in err, err


def test_a_failed_onnx_check_stops_evaluate(params_restored):
    """Issue 29, item 5: the ONNX export that does not match PyTorch is an error."""
    edit_param(params_restored, "evaluate.onnx_tolerance", "1.0e-12")
    err = _refused(params_restored, "evaluate")
    assert "its ONNX export differs from PyTorch" in err, err
    assert not (params_restored / "results" / "arch0" / "model.onnx").exists()
