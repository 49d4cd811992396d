"""Faults, bad input, interrupted runs and untrusted files (docs/reliability.md).

Covered here: writers killed with SIGKILL mid-write, disk full / read-only output simulated on
the real stage writers, unsafe pickles refused, bad inputs at the stage level, and (slow) a
chaos run of the quickstart pipeline killed at random moments that must end bit for bit equal
to a clean run. Faults other tests already cover are listed in docs/reliability.md.
"""

from __future__ import annotations

import copy
import errno
import filecmp
import hashlib
import importlib.util
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from config_values import eval_setup, search_config
from PIL import Image

from segnas.errors import ArtifactError, ConfigError
from segnas.io import read_json, remove_stale_temps, save_torch
from segnas.stem import build_stem
from segnas.trial.spec import TrialSpec

REPO = Path(__file__).resolve().parents[1]
TEMP_NAME = re.compile(r"^\..+\.tmp$")

DATA_PARAMS = {
    "seed": 0,
    "stem": {"weights": "none"},
    "datasets": {
        "synthetic": {
            "source": "synthetic",
            "num_images": {"train": 12, "val": 2, "test": 2},
            "image_size": [48, 64],
            "on_bad_file": "error",
            "longer_side": None,
        }
    },
    "split": {"dataset": "synthetic", "val_fraction": 0.25},
    "cache_stem": {
        "crop_size": [32, 32],
        "num_samples": 16,
        "scale_range": [0.5, 2.0],
        "flip": True,
    },
}


def stage(name: str):
    """``main`` of ``stages/<name>.py``, imported from the repository."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def hidden_temps(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if TEMP_NAME.match(p.name)
    )


def last_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


@pytest.fixture
def data_project(tmp_path, monkeypatch):
    """A working directory with params.yaml and the three data stages run once."""
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(DATA_PARAMS), encoding="utf-8")
    for name in ("prepare", "split", "cache_stem"):
        assert stage(name)([]) == 0, name
    return tmp_path


# ------------------------------------------------------------------ (a) writers killed mid-write

WRITER = r"""
import hashlib, sys
from segnas.io import write_bytes
target, size = sys.argv[1], int(sys.argv[2])
bodies = []
for i in range(2):
    body = hashlib.sha256(str(i).encode()).digest() * (size // 32)
    bodies.append(hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
print("ready", flush=True)
i = 0
while True:
    write_bytes(target, bodies[i % 2])
    if i == 0:
        print("wrote", flush=True)
    i += 1
"""


def _complete(path: Path) -> bool:
    digest, _, body = path.read_bytes().partition(b"\n")
    return hashlib.sha256(body).hexdigest().encode() == digest


def test_sigkill_during_atomic_writes_never_leaves_a_truncated_file(tmp_path):
    """A writer of 8 MiB artifacts (precomputed, so it spends its time writing) is SIGKILLed at
    seeded random moments after its first write, at least 8 times and until 3 kills landed
    inside a write: the final name always holds a complete file; partial data only in hidden
    temp files."""
    target = tmp_path / "out" / "artifact.bin"
    rng = random.Random(0)
    mid_write = kills = 0
    while kills < 8 or (mid_write < 3 and kills < 60):
        kills += 1
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), str(8 << 20)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready"
        # after one complete write (slow on a loaded disk), kill at a random later moment
        assert proc.stdout.readline().strip() == "wrote"
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        proc.stdout.close()
        if target.exists():
            assert _complete(target), "a truncated file appeared under the final name"
        leftovers = [p for p in target.parent.iterdir() if p != target]
        assert all(TEMP_NAME.match(p.name) for p in leftovers), leftovers
        mid_write += bool(leftovers)
        remove_stale_temps(target)
        assert [p.name for p in target.parent.iterdir()] in ([], [target.name])
    assert mid_write >= 3, f"{kills} kills, {mid_write} inside a write: too little exercised"
    assert target.exists() and _complete(target)


def test_torch_artifacts_are_byte_reproducible_and_loaded_safely(tmp_path):
    """``save_torch`` gives the same bytes for the same object (torch.save to the random temp
    name of an atomic write would embed that name in the archive)."""
    state = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"hash": "abc", "epoch": 3}}
    save_torch(tmp_path / "a.pt", state)
    save_torch(tmp_path / "b.pt", state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    loaded = torch.load(tmp_path / "a.pt", weights_only=True)
    assert torch.equal(loaded["w"], state["w"]) and loaded["meta"] == state["meta"]


# ------------------------------------------------- (b) disk full / read-only on the stage writers


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _read_only(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


def test_prepare_disk_full_mid_write_names_the_file_and_keeps_the_old_output(
    data_project, monkeypatch, capsys
):
    before = tree_bytes(Path("data/prepared"))
    real_save = Image.Image.save

    def save(self, fp, *args, **kwargs):
        if "/labels/train/" in str(fp) and str(fp).endswith("00003.png"):
            raise OSError(errno.ENOSPC, "No space left on device", str(fp))
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    assert stage("prepare")([]) == 2
    assert re.fullmatch(
        r"prepare: error: no space left on the device while writing "
        r"data/prepared/synthetic/labels/train/synth_train_00003\.png; free some space and rerun",
        last_error_line(capsys),
    )
    assert tree_bytes(Path("data/prepared")) == before
    assert hidden_temps(Path("data")) == []


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (_no_space, "no space left on the device while writing data/prepared/synthetic;"),
        (_read_only, "cannot write data/prepared/synthetic: the directory is read-only"),
    ],
)
def test_prepare_failing_rename_names_the_output_and_leaves_no_partial(
    data_project, monkeypatch, capsys, failure, message
):
    before = tree_bytes(Path("data/prepared"))
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", failure)
        assert stage("prepare")([]) == 2
        assert last_error_line(capsys) == f"prepare: error: {message}" + (
            " free some space and rerun"
            if failure is _no_space
            else " or not writable (Read-only file system)"
        )
    assert tree_bytes(Path("data/prepared")) == before
    assert hidden_temps(Path("data")) == []


def test_split_disk_full_never_leaves_a_split_that_reads_as_complete(
    data_project, monkeypatch, capsys
):
    real_replace = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # meta_train.txt is in place, meta_val.txt fails
            _no_space()
        return real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        assert stage("split")([]) == 2
        assert last_error_line(capsys) == (
            "split: error: no space left on the device while writing data/split/meta_val.txt; "
            "free some space and rerun"
        )
    assert hidden_temps(Path("data/split")) == []
    assert not Path("data/split/split.json").exists()
    assert stage("cache_stem")([]) == 2
    assert last_error_line(capsys).startswith(
        "cache_stem: error: data/split/split.json does not exist; run the stage"
    )
    assert stage("split")([]) == 0 and stage("cache_stem")([]) == 0


@pytest.mark.parametrize(
    ("target", "failure", "message"),
    [
        ("posix_fallocate", _no_space, "no space left on the device while writing cache/stem;"),
        ("replace", _read_only, "cannot write cache/stem: the directory is read-only"),
    ],
)
def test_stem_cache_write_failures_name_the_cache_and_keep_the_old_one(
    data_project, monkeypatch, capsys, target, failure, message
):
    before = tree_bytes(Path("cache"))
    with monkeypatch.context() as patch:
        patch.setattr(os, target, failure)
        assert stage("cache_stem")([]) == 2
        assert last_error_line(capsys).startswith(f"cache_stem: error: {message}")
    assert tree_bytes(Path("cache")) == before
    assert hidden_temps(Path("cache")) == []


def test_search_disk_full_names_the_file_and_a_rerun_completes(tmp_path, monkeypatch, capsys):
    """ENOSPC while the search stage writes an evaluation: one line naming the file, no
    partial file, and the rerun finishes from what was already written."""
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    # one worker: the failing write is patched in this process
    search = dict(params["search"], rounds=1, archs_per_round=2, objective="target", workers=1)
    Path("params.yaml").write_text(
        yaml.safe_dump({"seed": 0, "device": "cpu", "stem": {"weights": "none"}, "search": search})
    )
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "e0001.json":
            _no_space()
        return real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        assert stage("search")([]) == 2
    assert last_error_line(capsys) == (
        "search: error: no space left on the device while writing "
        "search/rounds/r00000/e0001.json; free some space and rerun"
    )
    assert hidden_temps(Path("search")) == []
    assert not Path("search/rounds/r00000/e0001.json").exists()
    first = Path("search/rounds/r00000/e0000.json").stat().st_ino
    assert stage("search")([]) == 0
    assert Path("search/rounds/r00000/e0000.json").stat().st_ino == first
    assert Path("search/top.json").is_file()


def test_stale_temporaries_of_a_killed_data_stage_are_cleaned_up(data_project):
    """What a SIGKILL leaves (hidden temp dirs and files) is removed by the next run."""
    leftovers = [
        Path("data/prepared/.synthetic.k1ll3d.tmp/images"),
        Path("data/prepared/.synthetic-raw.k1ll3d.tmp/train"),
        Path("cache/.stem.k1ll3d.tmp"),
    ]
    for path in leftovers:
        path.mkdir(parents=True)
    Path("data/split/.meta_val.txt.k1ll3d.tmp").write_text("half")
    for name in ("prepare", "split", "cache_stem"):
        assert stage(name)([]) == 0
    assert hidden_temps(Path("data")) == [] and hidden_temps(Path("cache")) == []


# ------------------------------------------------------------------- (c) untrusted files, bad input


class _Payload:
    """Pickles to a call that would create a marker file if it were ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _evil_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Payload(marker)}, path)
    return path


def test_untrusted_pickles_are_refused_everywhere_with_a_clear_message(tmp_path, data_project):
    from segnas.checkpoint import load_checkpoint
    from segnas.data.stem_cache import open_stem_cache
    from segnas.search.controller import read_checkpoint

    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(ConfigError, match=r"evil\.pt' cannot be loaded safely as a state dict"):
        build_stem(str(evil))
    with pytest.raises(ArtifactError, match=r"evil\.pt cannot be read"):
        load_checkpoint(evil)
    with pytest.raises(ArtifactError, match=r"evil\.pt is not a readable controller checkpoint"):
        read_checkpoint(evil)
    shutil.copyfile(evil, "cache/stem/stem.pt")
    with pytest.raises(ArtifactError, match=r"cache/stem/stem\.pt is not a stem state dict"):
        open_stem_cache("cache/stem").load_stem()
    assert not marker.exists()


def test_foreign_stem_weights_and_damaged_files_are_named(tmp_path):
    not_a_state = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], not_a_state)
    with pytest.raises(ConfigError, match=r"list\.pt' holds a list, not a state dict"):
        build_stem(str(not_a_state))
    other = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, other)
    with pytest.raises(ConfigError, match=r"resnet\.pt' does not fit the MobileNet-v2 stem"):
        build_stem(str(other))
    damaged = tmp_path / "damaged.pt"
    save_torch(damaged, build_stem("none").state_dict())
    damaged.write_bytes(damaged.read_bytes()[:1000])
    with pytest.raises(ConfigError, match=r"damaged\.pt' cannot be loaded safely"):
        build_stem(str(damaged))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: [1, 2\n", r"params\.yaml is not valid YAML: .* \(line 2, column 1\)$"),
        ("!!python/object/apply:os.system ['touch pwned']\n", r"params\.yaml is not valid YAML"),
        ("- a\n- b\n", r"params\.yaml: the top level must be a mapping"),
        ("seed: 0\ndatasets: {synthetic: {source: synthetic, num_imgs: 3}}\n", r"num_imgs"),
    ],
)
def test_malformed_params_stop_a_stage_with_one_line(tmp_path, monkeypatch, capsys, text, message):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(text, encoding="utf-8")
    assert stage("prepare")([]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("prepare: error: ")
    assert re.search(message, err), err
    assert not Path("pwned").exists() and not Path("data").exists()


def test_invalid_genotype_text_in_the_train_params_is_named():
    from segnas.errors import GenotypeError
    from segnas.selection import select_architectures

    with pytest.raises(GenotypeError, match=r"template 0 'nope' is not of the form op1\+op2@agg"):
        select_architectures(["arch0", "T:nope B:0"], top_k=0)


def test_damaged_prepared_files_and_split_are_named(data_project, capsys):
    image = next(Path("data/prepared/synthetic/images/train").glob("*.png"))
    image.write_bytes(image.read_bytes()[:200])
    assert stage("cache_stem")([]) == 2
    assert last_error_line(capsys) == (
        f"cache_stem: error: cannot read {image}: image file is truncated; rerun prepare"
    )
    Path("data/prepared/synthetic/index.csv").unlink()
    assert stage("split")([]) == 2
    assert last_error_line(capsys) == (
        "split: error: data/prepared/synthetic/index.csv does not exist; rerun the prepare stage"
    )
    assert stage("prepare")([]) == 0 and stage("split")([]) == 0
    meta_train = Path("data/split/meta_train.txt")
    meta_train.write_text(meta_train.read_text().splitlines()[0] + "\n")
    assert stage("cache_stem")([]) == 2
    assert "data/split/meta_train.txt lists 1 ids but" in last_error_line(capsys)


def test_search_refuses_a_stem_cache_built_with_other_weights(data_project, tmp_path):
    """The search data loader compares the configured stem weights with the cache header's."""
    from segnas.trial.data import TrialData

    other = tmp_path / "other_stem.pt"
    torch.manual_seed(123)
    save_torch(other, build_stem("none").state_dict())
    header = read_json("cache/stem/header.json")
    assert header["stem_weights"] == "none"
    with pytest.raises(ArtifactError, match=r"cache/stem.*stem") as caught:
        TrialData.from_paths("data/prepared/synthetic", "data/split", "cache/stem", str(other))
    message = str(caught.value)
    assert "'none'" in message and repr(str(other)) in message and "rerun" in message
    assert TrialData.from_paths("data/prepared/synthetic", "data/split", "cache/stem", "none")
    Path("cache/stem/stem.pt").write_bytes(b"damaged")
    with pytest.raises(ArtifactError, match=r"cache/stem/stem\.pt is not a stem state dict"):
        TrialData.from_paths("data/prepared/synthetic", "data/split", "cache/stem", "none")


def test_stem_cache_of_other_crop_settings_is_refused_by_the_expected_header(data_project):
    from segnas.data.stem_cache import open_stem_cache

    with pytest.raises(ArtifactError, match=r"crop_size is \[32, 32\] but \[96, 96\]"):
        open_stem_cache("cache/stem", expected={"crop_size": [96, 96]})
    with pytest.raises(ArtifactError, match=r"stem_weights is 'none' but 'imagenet'"):
        open_stem_cache("cache/stem", expected={"stem_weights": "imagenet"})


def test_trained_checkpoint_with_weights_of_another_architecture_is_named(tmp_path):
    from segnas.checkpoint import CHECKPOINT_FORMAT, load_trained
    from segnas.model import build_model
    from segnas.published import resolve_genotype

    arch0, arch1 = resolve_genotype("arch0"), resolve_genotype("arch1")
    model = build_model(arch0, num_classes=11, agg_width=16, sep_conv_units=1, seed=0)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "genotype": arch1.to_text(),
        "genotype_hash": arch1.hash,
        "config": {"agg_width": 16, "sep_conv_units": 1},
        "num_classes": 11,
    }
    path = tmp_path / "best.pt"
    save_torch(path, {"meta": meta, "model": model.state_dict(), "state": {}})
    with pytest.raises(ArtifactError, match=r"best\.pt.*architecture"):
        load_trained(path)


# ------------------------------------------------------------------------ evaluation failures


@dataclass(frozen=True)
class DyingOnceSpec(TrialSpec):
    """The cheap ``target`` reward, but the first evaluation SIGKILLs its worker process."""

    marker: str = ""

    def build(self):
        evaluate = super().build()
        marker = Path(self.marker)

        def dying_once(genotype, seed):
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return evaluate(genotype, seed)

        return dying_once


def test_a_dying_worker_is_retried_once_and_the_search_goes_on(tmp_path):
    import io

    from segnas.search.config import params_hash_of
    from segnas.search.layout import SearchLayout
    from segnas.search.runner import run_search

    config = search_config(seed=0, rounds=1, archs_per_round=2, objective="target", workers=2)
    spec = DyingOnceSpec("target", eval_setup(), "arch0", marker=str(tmp_path / "died"))
    stream = io.StringIO()
    records = run_search(
        SearchLayout(tmp_path / "search"), config, params_hash_of(config), spec, stream
    )
    assert (tmp_path / "died").exists()
    assert [r.result.status for r in records] == ["ok", "ok"]
    assert "died; retrying it once" in stream.getvalue()
    clean = run_search(
        SearchLayout(tmp_path / "clean"),
        config,
        params_hash_of(config),
        TrialSpec("target", eval_setup(), "arch0"),
        io.StringIO(),
    )
    assert [r.result.to_row() for r in records] == [r.result.to_row() for r in clean]


@dataclass(frozen=True)
class AlwaysDyingSpec(TrialSpec):
    """The cheap ``target`` reward, but the evaluation with seed ``die_seed`` always SIGKILLs
    its worker process."""

    die_seed: int = -1

    def build(self):
        evaluate = super().build()

        def dying(genotype, seed):
            if seed == self.die_seed:
                os.kill(os.getpid(), signal.SIGKILL)
            return evaluate(genotype, seed)

        return dying


def test_an_evaluation_whose_worker_dies_twice_is_recorded_as_worker_died(tmp_path):
    import io

    from segnas.search.config import params_hash_of
    from segnas.search.layout import SearchLayout
    from segnas.search.runner import run_search
    from segnas.seeds import derive_seed

    config = search_config(seed=0, rounds=2, archs_per_round=2, objective="target", workers=2)
    spec = AlwaysDyingSpec("target", eval_setup(), "arch0", die_seed=derive_seed(0, "eval", 0, 1))
    stream = io.StringIO()
    layout = SearchLayout(tmp_path / "search")
    records = run_search(layout, config, params_hash_of(config), spec, stream)
    assert [r.result.status for r in records] == ["ok", "worker_died", "ok", "ok"]
    died = records[1].result
    assert died.reward == 0 and "died twice" in died.reason
    assert died.hash == read_json(layout.samples(0))["samples"][1]["hash"]
    assert "r00000/e0001.json) died again; recorded as worker_died" in stream.getvalue()
    assert (tmp_path / "search" / "top.json").is_file()


def test_workers_that_cannot_start_stop_the_run_instead_of_failing_every_job():
    """A worker whose initializer fails dies before any job: no job is blamed for it."""
    from segnas.workers import WorkerPool

    outcomes = []
    pool = WorkerPool(2, initializer=int, initargs=("not a base",))
    with pytest.raises(BrokenProcessPool, match="died before it could run anything"), pool:
        pool.run(os.getpid, {0: (), 1: ()}, outcomes.append, outcomes.append, outcomes.append)
    assert outcomes == []


# -------------------------------------------------------------------- (d) chaos: kill -9 at random

STAGES = ("prepare", "split", "cache_stem", "search", "compare", "train", "evaluate", "report")
STAGE_OUTPUTS = {
    "prepare": "data/prepared",
    "split": "data/split",
    "cache_stem": "cache/stem",
    "search": "search",
    "compare": "compare",
    "train": "models",
    "evaluate": "results",
    "report": "report",
}
# SIGKILLs per stage (the issue asks for cache_stem, search, compare and train).
KILLS = {"cache_stem": 2, "search": 2, "compare": 2, "train": 2}
# Units of work a resumed stage must reuse, never redo (one evaluation, one controller update).
UNIT_FILES = (
    "search/rounds/*/samples.json",
    "search/rounds/*/e*.json",
    "search/controller/round_*.pt",
    "compare/samples.json",
    "compare/evals/*.json",
)
# Wall-clock files: compared without their wall-clock fields (segnas.pipeline.digests'
# canonical digest drops JSON keys / CSV columns / checkpoint entries such as ``seconds``,
# ``train_seconds``, ``latency_ms``) or, for the whole-file timing tables, only for presence.
WALL_CLOCK_FIELDS = (
    "search/rounds/*/e*.json",  # result.seconds
    "compare/evals/*.json",  # result.seconds
    "models/*/train.json",  # train_seconds
    "models/*/*.pt",  # state.train_seconds
    "results/metrics.json",  # latency
    "results/*/metrics.json",  # latency
    "report/summary.json",  # train.<model>.latency_ms
)
WALL_CLOCK_FILES = (
    "search/timings.csv",
    "report/report.md",
    "report/report.html",
    "report/figures/pareto_latency.png",
)


def _tiny_pipeline_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params = copy.deepcopy(params)
    params.update({key: copy.deepcopy(DATA_PARAMS[key]) for key in DATA_PARAMS})
    params["device"] = "cpu"
    search = params["search"]
    search.update({"rounds": 2, "archs_per_round": 2, "workers": 1, "progress_interval": 1})
    search["eval"].update(
        {
            "phase1_epochs": 1,
            "phase2_epochs": 1,
            "batch_size": 8,
            "crop_size": [32, 32],
            "val_size": None,
            "input_size": [48, 64],
            "measure_latency": False,
        }
    )
    params["compare"].update({"num_archs": 2, "long_phase2_epochs": 1, "workers": 1})
    params["train"].update(
        {
            "epochs": 2,
            "batch_size": 4,
            "crop_size": [32, 32],
            "agg_width": 16,
            "sep_conv_units": 1,
            "threads": 1,
            "top_k": 1,
        }
    )
    params["evaluate"].update(
        {
            "latency_sizes": [[48, 64]],
            "latency_repeats": 1,
            "qualitative": 1,
            "threads": 1,
            "onnx": False,  # the export costs more than the rest of the stage
        }
    )
    params["report"].update({"qualitative": 1})
    return params


def _env(src: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0", OMP_NUM_THREADS="1")


def _command(src: Path, name: str) -> list[str]:
    return [sys.executable, str(src / "stages" / f"{name}.py"), "--params", "params.yaml"]


CLEAN_DRIVER = """
import subprocess, sys
for command in {commands!r}:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{{command}} failed ({{done.returncode}}):\\n{{done.stderr[-3000:]}}")
"""


def _files(root: Path) -> set[str]:
    """Files under ``root``; robust to directories a running stage deletes meanwhile."""
    return {
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, names in os.walk(root)
        for name in names
    }


def _units(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for pattern in UNIT_FILES
        for p in root.glob(pattern)
    }


def _kill_at_random(
    ws: Path, src: Path, name: str, rng: random.Random, eager: bool = False
) -> bool:
    """Start stage ``name``; once ``k + 1`` new files (k seeded in 0..3) appeared, wait a
    seeded 0-0.3 s and SIGKILL it (``eager``: at the first new file). True when the kill
    landed before the stage ended."""
    before = _files(ws)
    wait_files, delay = rng.randint(0, 3), rng.uniform(0.0, 0.3)
    if eager:
        wait_files, delay = 0, 0.0
    log = ws.parent / f"{name}.log"
    with open(log, "wb") as stream:
        proc = subprocess.Popen(
            _command(src, name), cwd=ws, env=_env(src), stdout=stream, stderr=stream
        )
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if len(_files(ws) - before) >= wait_files + 1:
            time.sleep(delay)
            break
        time.sleep(0.02)
    landed = proc.poll() is None
    if landed:
        proc.send_signal(signal.SIGKILL)
    code = proc.wait()
    print(f"chaos: {name} after {wait_files + 1} new files + {delay:.2f} s: exit {code}")
    output = log.read_text(errors="replace")
    assert code in (0, -signal.SIGKILL), f"{name} failed ({code}):\n{output[-3000:]}"
    return landed and code == -signal.SIGKILL


def _same(clean: Path, chaos: Path, rel: str) -> bool:
    from segnas.pipeline.digests import canonical_digest

    path = Path(rel)
    if any(path.match(p) for p in WALL_CLOCK_FILES):
        return True
    if filecmp.cmp(clean / rel, chaos / rel, shallow=False):
        return True
    return any(path.match(p) for p in WALL_CLOCK_FIELDS) and canonical_digest(
        clean / rel
    ) == canonical_digest(chaos / rel)


@pytest.mark.slow
def test_chaos_sigkill_during_the_quickstart_ends_equal_to_a_clean_run(tmp_path):
    """SIGKILL the running stage 8 times at seeded random moments (cache_stem, search,
    compare and train twice each), rerun it each time, and compare every output with
    a clean run's: bit for bit, except the named wall-clock files. TrialPool and controller
    updates finished before a kill are reused, not redone (same inode and mtime)."""
    src = tmp_path / "src"
    for name in ("segnas", "stages", "workflow"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_dump(_tiny_pipeline_params(), sort_keys=False)
    clean, chaos = tmp_path / "clean", tmp_path / "chaos"
    for ws in (clean, chaos):
        ws.mkdir()
        (ws / "params.yaml").write_text(params, encoding="utf-8")
    driver = CLEAN_DRIVER.format(commands=[_command(src, s) for s in STAGES])
    clean_run = subprocess.Popen(
        [sys.executable, "-c", driver], cwd=clean, env=_env(src), stderr=subprocess.PIPE
    )
    rng = random.Random(20260525)
    landed = dict.fromkeys(KILLS, 0)
    for name in STAGES:
        attempts = 0
        while landed.get(name, 0) < KILLS.get(name, 0) and attempts < KILLS[name] + 2:
            attempts += 1
            units = _units(chaos)
            if _kill_at_random(chaos, src, name, rng, eager=attempts > KILLS[name]):
                landed[name] += 1
                assert {k: v for k, v in _units(chaos).items() if k in units} == units, (
                    f"{name}: work finished before the kill was redone"
                )
            elif landed[name]:
                break  # the stage finished before the kill: its outputs are complete
            else:  # finished before any kill landed: start it over to kill it earlier
                shutil.rmtree(chaos / STAGE_OUTPUTS[name])
        units = _units(chaos)
        done = subprocess.run(_command(src, name), cwd=chaos, env=_env(src), capture_output=True)
        assert done.returncode == 0, f"{name} after kills:\n{done.stderr.decode()[-3000:]}"
        assert {k: v for k, v in _units(chaos).items() if k in units} == units, name
    assert clean_run.wait(timeout=600) == 0, clean_run.stderr.read().decode()[-3000:]
    clean_run.stderr.close()
    assert all(landed[name] >= 1 for name in ("cache_stem", "search", "compare", "train")), landed
    assert sum(landed.values()) >= 6, landed
    print(f"chaos: kills landed {landed}")

    def outputs(root: Path) -> set[str]:
        return {
            p.relative_to(root).as_posix()
            for out in STAGE_OUTPUTS.values()
            for p in (root / out).rglob("*")
            if p.is_file() and not TEMP_NAME.match(p.name)
        }

    assert outputs(chaos) == outputs(clean)
    differing = sorted(rel for rel in outputs(clean) if not _same(clean, chaos, rel))
    assert not differing, differing
    for out in STAGE_OUTPUTS.values():  # every rerun swept what its killed writers left
        assert hidden_temps(chaos / out) == [], out


def test_a_refused_pickle_never_quotes_torchs_advice_to_disable_weights_only(tmp_path):
    from segnas.checkpoint import load_checkpoint
    from segnas.search.controller import read_checkpoint

    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker)
    messages = []
    for load, error in (
        (lambda: build_stem(str(evil)), ConfigError),
        (lambda: load_checkpoint(evil), ArtifactError),
        (lambda: read_checkpoint(evil), ArtifactError),
    ):
        with pytest.raises(error) as caught:
            load()
        messages.append(str(caught.value))
    for message in messages:
        assert "False" not in message and "can still be loaded" not in message, message
        assert "GLOBAL io.open" in message, message  # names what was refused
    assert not marker.exists()


def test_a_model_path_that_is_no_training_checkpoint_says_what_it_is(tmp_path, capsys):
    from segnas.checkpoint import load_trained
    from segnas.search.controller import Controller, save_controller
    from segnas.space import DEFAULT_SPACE

    with pytest.raises(ArtifactError, match="is a directory") as caught:
        load_trained(tmp_path)
    assert "does not exist" not in str(caught.value)
    stem = tmp_path / "stem.pt"
    torch.save(build_stem("none").state_dict(), stem)
    controller = tmp_path / "final.pt"
    save_controller(controller, Controller(DEFAULT_SPACE, 8, 1, 0.1, seed=0), "h")
    for path, what in ((stem, "state dict"), (controller, "search controller checkpoint")):
        with pytest.raises(ArtifactError, match=what) as caught:
            load_trained(path)
        assert "delete" not in str(caught.value) and "best.pt" in str(caught.value)


_ORPHAN_SCRIPT = """
import os, time
from segnas.workers import WorkerPool

if __name__ == "__main__":
    pool = WorkerPool(2)
    pids = []
    pool.run(os.getpid, {0: (), 1: ()}, lambda key, pid: pids.append(pid), print)
    print(*pids, flush=True)
    pool.run(time.sleep, {0: (120,), 1: (120,)}, print, print)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_workers_die_with_their_parent_after_kill_9(tmp_path):
    script = tmp_path / "pool_main.py"
    script.write_text(_ORPHAN_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    main = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    try:
        pids = [int(p) for p in main.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        time.sleep(0.5)
    finally:
        main.kill()
        main.wait()
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphans = [p for p in pids if _alive(p)]
    for pid in orphans:  # ours: started by this test
        os.kill(pid, signal.SIGKILL)
    assert not orphans
