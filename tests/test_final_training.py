"""Final training: schedule, config checks, checkpoints, kill -9 resume, time budget."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from config_values import quickstart_section, train_config
from test_evaluate import _reprepared_project, train_tiny

from segnas.checkpoint import load_checkpoint, load_trained
from segnas.config import load_config
from segnas.data.prepare import prepare_dataset
from segnas.data.prepared import load_prepared
from segnas.errors import ArtifactError, ConfigError
from segnas.final_training import TrainJob, run_train_job, train_model
from segnas.pipeline.digests import canonical_digest
from segnas.published import resolve_genotype
from segnas.selection import SizeCap, select_architectures
from segnas.trainconfig import TrainConfig
from segnas.training_data import build_datasets, median_frequency_weights
from segnas.training_loop import poly_lr
from segnas.workers import run_jobs

TINY = {"train": 8, "val": 2, "test": 2}
CONFIG = dict(
    epochs=3,
    batch_size=4,
    crop_size=(32, 32),
    scale_range=(0.75, 1.25),
    checkpoint_every=1,
    agg_width=16,
    sep_conv_units=1,
)


@pytest.fixture(scope="module")
def prepared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "synthetic"
    spec = {"source": "synthetic", "num_images": TINY, "image_size": [48, 64]}
    prepare_dataset("synthetic", spec, root, progress=False)
    return root


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(prepared_root: Path, out_dir: Path, **overrides) -> object:
    prepared = load_prepared(prepared_root)
    config = train_config(**{**CONFIG, **overrides})
    train_set, val_set = build_datasets(prepared, config)
    return train_model(
        resolve_genotype("arch0"),
        train_set,
        val_set,
        prepared.num_classes,
        config,
        out_dir,
        classes=prepared.classes,
        palette=prepared.palette,
        dataset_name="synthetic",
        live_dir=out_dir / "dvclive",
    )


def test_poly_lr_follows_the_paper_schedule():
    assert poly_lr(0.05, 0.0) == pytest.approx(0.05)
    assert poly_lr(0.05, 0.5) == pytest.approx(0.05 * 0.5**0.9)
    assert poly_lr(0.05, 1.0) == 0.0
    assert poly_lr(0.05, 2.0) == 0.0


def _load_train(**changes: object) -> TrainConfig:
    values = {**quickstart_section("train"), **changes}
    return load_config(TrainConfig, values, "train", stem_weights="none", seed=0)


def test_config_rejects_bad_values_naming_the_key():
    with pytest.raises(ConfigError, match="train.lrr: unknown key"):
        _load_train(lrr=0.1)
    with pytest.raises(ConfigError, match="train.optimizer"):
        _load_train(optimizer="rmsprop")
    with pytest.raises(ConfigError, match="train.time_budget_s"):
        _load_train(time_budget_s=0)
    with pytest.raises(ConfigError, match="train.scale_range must be \\[low, high\\]"):
        _load_train(scale_range=[2, 1])
    config = _load_train(crop_size=[160, 160], scale_range=[0.5, 1])
    assert config.crop_size == (160, 160) and config.scale_range == (0.5, 1.0)


def test_params_hash_ignores_bookkeeping_only():
    base = train_config()
    assert train_config(checkpoint_every=7, num_workers=2).hash == base.hash
    assert train_config(lr=0.01).hash != base.hash


def test_training_writes_checkpoints_metrics_and_poly_lr(prepared_root, tmp_path):
    result = run(prepared_root, tmp_path / "m")
    state = result.state
    assert state.finished and state.epoch == 3 and state.iteration == 6
    assert [h["epoch"] for h in state.history] == [1, 2, 3]
    # the lr logged for an epoch is the one of its last iteration (progress (2e + 1) / 6)
    for entry in state.history:
        progress = (2 * entry["epoch"] - 1) / 6
        assert entry["lr"] == pytest.approx(poly_lr(0.05, progress))
    assert all(0 <= h["val_miou"] <= 1 for h in state.history)
    assert result.best is not None and result.best.exists()
    best_epoch = max(state.history, key=lambda h: h["val_miou"])["epoch"]
    assert load_checkpoint(result.best)["state"]["epoch"] == best_epoch
    lines = (tmp_path / "m/dvclive/plots/metrics/val_miou.tsv").read_text().splitlines()
    assert lines[0] == "step\tval_miou" and len(lines) == 4
    assert (tmp_path / "m/dvclive/plots/metrics/train/lr.tsv").exists()
    written = json.loads((tmp_path / "m/train.json").read_text())
    summary = written["summary"]
    assert summary["epochs"] == 3 and summary["final_val_miou"] == state.history[-1]["val_miou"]
    assert written["provenance"]["threads"] == 1 and "torch" in written["provenance"]["packages"]
    model, meta = load_trained(result.last)
    assert meta["genotype_hash"] == resolve_genotype("arch0").hash
    assert meta["classes"][0] == "sky" and len(meta["palette"]) == 11
    assert not model.training


def test_finished_run_is_not_retrained_and_mismatch_is_refused(prepared_root, tmp_path):
    first = run(prepared_root, tmp_path / "m", epochs=1)
    before = (tmp_path / "m/last.pt").stat().st_mtime_ns
    again = run(prepared_root, tmp_path / "m", epochs=1)
    assert again.resumed_from_epoch == 1 and again.state.history == first.state.history
    assert (tmp_path / "m/last.pt").stat().st_mtime_ns == before
    with pytest.raises(ArtifactError, match="params_hash.*delete"):
        run(prepared_root, tmp_path / "m", epochs=1, lr=0.01)


def test_time_budget_stops_training_and_decays_lr_over_the_budget(prepared_root, tmp_path, capsys):
    result = run(prepared_root, tmp_path / "m", epochs=1000, time_budget_s=0.5)
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    # progress speaks of the budget, not of the 1000-epoch upper bound
    assert "budget" in last_line and "/0.5 s" in last_line and "ETA 0m00s" in last_line
    state = result.state
    assert state.finished and state.epoch < 1000
    assert state.train_seconds >= 0.5
    # the first iteration runs at the base lr; the last one's lr has decayed with the budget
    assert state.iteration >= 2 and state.history[-1]["lr"] < 0.05


def test_adam_optimizer_trains(prepared_root, tmp_path):
    result = run(prepared_root, tmp_path / "m", epochs=1, optimizer="adam", lr=1e-3)
    optimizer_state = load_checkpoint(result.last)["optimizer"]
    assert "exp_avg" in next(iter(optimizer_state["state"].values()))


def test_median_frequency_weights_follow_segnas_definition(prepared_root):
    prepared = load_prepared(prepared_root)
    weights = median_frequency_weights(prepared, ["train"])
    rows = prepared.index[prepared.index["split"] == "train"]
    counts = rows[[f"pixels_{c}" for c in prepared.classes]].to_numpy(dtype=float)
    labelled = counts.sum(axis=1)
    frequency = [
        counts[:, c].sum() / labelled[counts[:, c] > 0].sum() if counts[:, c].any() else 0.0
        for c in range(len(prepared.classes))
    ]
    median = statistics.median(f for f in frequency if f > 0)
    expected = [median / f if f > 0 else 1.0 for f in frequency]
    assert weights == pytest.approx(expected)
    # rarer classes weigh more; the median class weighs 1
    order = sorted(range(len(frequency)), key=lambda c: frequency[c])
    seen = [c for c in order if frequency[c] > 0]
    assert weights[seen[0]] > 1 > weights[seen[-1]]


def test_class_weighted_training_records_the_weights(prepared_root, tmp_path):
    prepared = load_prepared(prepared_root)
    weights = median_frequency_weights(prepared, ["train"])
    config = train_config(**{**CONFIG, "epochs": 1, "class_weighting": "median_frequency"})
    train_set, val_set = build_datasets(prepared, config)
    common = (resolve_genotype("arch0"), train_set, val_set, prepared.num_classes, config)
    result = train_model(*common, tmp_path / "w", class_weights=weights)
    assert load_checkpoint(result.last)["meta"]["class_weights"] == pytest.approx(weights)
    plain = run(prepared_root, tmp_path / "p", epochs=1)
    assert result.state.history[0]["loss"] != plain.state.history[0]["loss"]
    with pytest.raises(ConfigError, match="needs class weights"):
        train_model(*common, tmp_path / "x")
    with pytest.raises(ConfigError, match="train.class_weighting"):
        _load_train(class_weighting="inverse")


KILLED_RUN = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_final_training import run
from pathlib import Path
torch.set_num_threads(1)
run(Path({root!r}), Path({out!r}), epochs={epochs})
"""


def test_killed_run_resumes_to_the_same_final_metrics(prepared_root, tmp_path):
    epochs = 12
    reference = run(prepared_root, tmp_path / "ref", epochs=epochs)
    killed_dir = tmp_path / "killed"
    script = KILLED_RUN.format(
        tests=str(Path(__file__).parent),
        root=str(prepared_root),
        out=str(killed_dir),
        epochs=epochs,
    )
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)])
    try:
        deadline = time.monotonic() + 120
        while not (killed_dir / "last.pt").exists():
            assert proc.poll() is None, "the training subprocess ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(killed_dir / "last.pt")["state"]["epoch"]
    assert killed_at < epochs, "the run finished before it was killed; nothing was resumed"
    resumed = run(prepared_root, killed_dir, epochs=epochs)
    assert resumed.resumed_from_epoch == killed_at
    strip = [{k: v for k, v in h.items() if k != "train_seconds"} for h in reference.state.history]
    again = [{k: v for k, v in h.items() if k != "train_seconds"} for h in resumed.state.history]
    assert again == strip
    ref_weights = load_checkpoint(reference.last)["model"]
    new_weights = load_checkpoint(resumed.last)["model"]
    assert all(torch.equal(ref_weights[k], new_weights[k]) for k in ref_weights)
    ref_tsv = (tmp_path / "ref/dvclive/plots/metrics/val_miou.tsv").read_text()
    assert (killed_dir / "dvclive/plots/metrics/val_miou.tsv").read_text() == ref_tsv


def test_select_architectures(tmp_path):
    top = tmp_path / "top.json"
    text = resolve_genotype("arch1").to_text()
    top.write_text(json.dumps([{"genotype": text, "reward": 0.5}]))
    selected = select_architectures(["arch0", text], top_k=1, top_json=top)
    assert list(selected) == ["arch0", f"g{resolve_genotype('arch1').hash}", "top0"]
    assert selected["top0"] == resolve_genotype("arch1")
    with pytest.raises(ConfigError, match="top_k is 2"):
        select_architectures([], top_k=2, top_json=top)
    with pytest.raises(ConfigError, match="appears twice"):
        select_architectures(["arch0", "arch0"])


def test_top_k_skips_search_results_over_the_size_cap(tmp_path):
    arch0, arch1 = resolve_genotype("arch0"), resolve_genotype("arch1")
    cap = SizeCap(max_params=0, num_classes=19)
    # the paper's final networks with 19 classes and a random stem: arch1 is the smaller one
    sizes = {arch0.hash: cap.params(arch0), arch1.hash: cap.params(arch1)}
    assert sizes[arch1.hash] < sizes[arch0.hash]
    top = tmp_path / "top.json"
    top.write_text(json.dumps({"top": [{"genotype": g.to_text()} for g in (arch0, arch1)]}))
    between = SizeCap(sizes[arch0.hash] - 1, num_classes=19)
    assert select_architectures([], top_k=1, top_json=top, cap=between) == {"top0": arch1}
    assert select_architectures([], top_k=1, top_json=top) == {"top0": arch0}
    with pytest.raises(ConfigError, match="max_params = 1"):
        select_architectures([], top_k=1, top_json=top, cap=SizeCap(1, num_classes=19))


def test_a_diverging_training_stops_with_a_named_error_and_no_nan_checkpoint(
    prepared_root, tmp_path
):
    from segnas.training_loop import TrainingDiverged

    with pytest.raises(TrainingDiverged, match=r"train\.lr") as caught:
        run(prepared_root, tmp_path / "m", lr=1e6, epochs=4)
    assert "diverged" in str(caught.value)
    for name in ("best.pt", "last.pt"):
        path = tmp_path / "m" / name
        if path.exists():
            state = load_checkpoint(path)["model"]
            assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


def test_models_trained_side_by_side_equal_those_trained_one_by_one(prepared_root, tmp_path):
    prepared = load_prepared(prepared_root)
    config = train_config(**{**CONFIG, "epochs": 2})
    train_set, val_set = build_datasets(prepared, config)

    def jobs(root: Path) -> dict[str, TrainJob]:
        return {
            name: TrainJob(
                name,
                resolve_genotype(name),
                train_set,
                val_set,
                prepared.num_classes,
                config,
                root / name,
                torch.device("cpu"),
                prepared.classes,
                prepared.palette,
                "synthetic",
            )
            for name in ("arch0", "arch1")
        }

    one_by_one = run_jobs(run_train_job, jobs(tmp_path / "seq"), processes=1, threads=1)
    side_by_side = run_jobs(run_train_job, jobs(tmp_path / "par"), processes=2, threads=1)
    assert [s["final_loss"] for s in one_by_one.values()] == [
        s["final_loss"] for s in side_by_side.values()
    ]
    files = sorted(p.relative_to(tmp_path / "seq") for p in (tmp_path / "seq").rglob("*.*"))
    assert any(f.name == "best.pt" for f in files) and any(f.name == "train.json" for f in files)
    for relative in files:
        assert canonical_digest(tmp_path / "seq" / relative) == canonical_digest(
            tmp_path / "par" / relative
        ), relative


def test_train_stage_refuses_to_resume_a_model_of_other_classes(tmp_path, capsys):
    """Issue 29 item 9: the dataset prepared again with other classes, then train resumed."""
    from search_project import run_stage

    project = _reprepared_project(train_tiny(tmp_path / "tiny"), tmp_path / "project")
    before = (project / "models/arch0/last.pt").read_bytes()
    assert run_stage(project, "train", "--params", "params.yaml") == 2
    err = capsys.readouterr().err
    assert "models/arch0/last.pt was trained on" in err
    assert "data/prepared/synthetic now has 3 classes (background, lesion, vessel)" in err
    assert "delete models/arch0" in err
    assert (project / "models/arch0/last.pt").read_bytes() == before
