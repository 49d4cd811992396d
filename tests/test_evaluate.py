"""Evaluation: label-size scores, per-class table, model facts, qualitative strips."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from config_values import train_config
from PIL import Image

from segnas.checkpoint import BEST, LAST, load_checkpoint
from segnas.complexity import count_params
from segnas.data.dataset import SegmentationDataset
from segnas.data.prepare import prepare_dataset
from segnas.data.prepared import load_prepared
from segnas.evaluate import evaluate_checkpoint, model_facts, pick_checkpoint, training_history
from segnas.final_training import train_model
from segnas.model import build_model
from segnas.published import resolve_genotype
from segnas.scoring import ResizeInput, score_model
from segnas.training_data import build_datasets

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_tiny(tmp_path_factory.mktemp("evaluate"))


def train_tiny(base: Path) -> tuple[Path, Path]:
    """arch0 trained 2 epochs on a tiny synthetic dataset: (base/data, base/model)."""
    torch.set_num_threads(1)
    spec = {"source": "synthetic", "num_images": {"train": 4, "val": 2, "test": 3}}
    prepare_dataset("synthetic", dict(spec, image_size=[48, 64]), base / "data", progress=False)
    prepared = load_prepared(base / "data")
    config = train_config(
        epochs=2, batch_size=4, crop_size=(32, 32), input_size=(24, 32), agg_width=16
    )
    train_set, val_set = build_datasets(prepared, config)
    train_model(
        resolve_genotype("arch0"),
        train_set,
        val_set,
        prepared.num_classes,
        config,
        base / "model",
        classes=prepared.classes,
        palette=prepared.palette,
        dataset_name="synthetic",
    )
    return base / "data", base / "model"


def test_scores_are_computed_at_label_size(trained):
    data_root, model_dir = trained
    prepared = load_prepared(data_root)
    model = build_model(resolve_genotype("arch0"), 11, agg_width=16, seed=0)
    dataset = SegmentationDataset(prepared, prepared.ids("test"), ResizeInput((24, 32)))
    image, label = dataset[0]
    assert image.shape[-2:] == (24, 32) and label.shape == (48, 64)
    confusion = score_model(model, dataset, 11, CPU)
    labelled = sum(int((dataset[i][1] != 255).sum()) for i in range(len(dataset)))
    assert int(confusion.matrix.sum()) == labelled


def test_evaluate_checkpoint_writes_the_tables(trained, tmp_path):
    data_root, model_dir = trained
    prepared = load_prepared(data_root)
    checkpoint = pick_checkpoint(model_dir, "best")
    assert checkpoint.name == "best.pt"
    metrics = evaluate_checkpoint(
        checkpoint,
        prepared,
        "test",
        tmp_path,
        CPU,
        latency_sizes=[[32, 64], [24, 32]],
        latency_repeats=1,
        qualitative=2,
        name="arch0",
    )
    assert metrics["num_images"] == 3 and metrics["input_size"] == [24, 32]
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert metrics["checkpoint_epoch"] == load_checkpoint(checkpoint)["state"]["epoch"]
    ious = [v for v in metrics["per_class_iou"].values() if v is not None]
    assert metrics["miou"] == pytest.approx(sum(ious) / len(ious))
    rows = (tmp_path / "per_class_iou.csv").read_text().splitlines()
    assert rows[0] == "class,iou" and len(rows) == 12 and rows[1].startswith("sky,")
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["miou"] == metrics["miou"] and set(stored["latency_ms"]) == {"64x32", "32x24"}
    reference = build_model(resolve_genotype("arch0"), 11, agg_width=16)
    assert stored["params"] == count_params(reference)
    assert stored["flops"]["64x32"] > stored["flops"]["32x24"] > 0
    assert "threads" in stored["device"] and stored["weights_bytes"] > 4 * stored["params"]
    assert stored["onnx"]["ok"] and stored["onnx"]["max_abs_diff"] < 1e-3
    strips = sorted((tmp_path / "qualitative").glob("*.png"))
    assert len(strips) == 2
    width, height = Image.open(strips[0]).size
    assert (width, height) == (3 * 64 + 8, 48)


def test_the_saved_onnx_file_is_what_evaluation_runs(trained, tmp_path, monkeypatch):
    import segnas.export as export
    import segnas.inference as inference

    exports = []
    real = export.export_onnx
    monkeypatch.setattr(export, "export_onnx", lambda *a, **k: exports.append(a) or real(*a, **k))
    monkeypatch.setattr(
        inference, "export_onnx_bytes", lambda *a: pytest.fail("exported a second time")
    )
    data_root, model_dir = trained
    metrics = evaluate_checkpoint(
        pick_checkpoint(model_dir, "best"),
        load_prepared(data_root),
        "test",
        tmp_path,
        CPU,
        latency_sizes=[[24, 32]],
        latency_repeats=1,
        qualitative=1,
        name="arch0",
    )
    assert len(exports) == 1 and metrics["inference_path"] == "optimized"
    assert metrics["onnx"]["ok"] and metrics["onnx"]["input_size"] == [24, 32]
    assert len(list((tmp_path / "qualitative").glob("*.png"))) == 1


def test_history_of_a_best_checkpoint_is_the_whole_run(trained, tmp_path):
    _, model_dir = trained
    last = load_checkpoint(model_dir / LAST)
    history = last["state"]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    early_meta = dict(last["meta"], state=dict(last["state"], epoch=1, history=history[:1]))
    best = tmp_path / BEST
    shutil.copy(model_dir / LAST, tmp_path / LAST)
    assert training_history(best, early_meta) == history
    assert training_history(tmp_path / LAST, early_meta) == history[:1]
    foreign = dict(last, meta=dict(last["meta"], genotype_hash="another architecture"))
    torch.save(foreign, tmp_path / LAST)
    assert training_history(best, early_meta) == history[:1]
    (tmp_path / LAST).unlink()
    assert training_history(best, early_meta) == history[:1]


def test_model_facts_counts_the_plain_model_and_times_another():
    model = build_model(resolve_genotype("arch1"), 11, agg_width=16)
    facts = model_facts(model, CPU, [[16, 16]], warmup=0, repeats=1, timed=model.eval())
    assert facts["params"] == count_params(model)
    assert facts["decoder_params"] < facts["params"]
    assert not math.isnan(facts["latency_ms"]["16x16"])
    assert np.isfinite(facts["flops"]["16x16"])


def _reprepared_project(trained, root: Path) -> Path:
    """A project whose models/arch0 was trained on the synthetic classes, and whose
    data/prepared/synthetic was prepared again from a folder dataset of three classes."""
    from search_project import REPO
    from test_data_folder import make_folder

    _, model_dir = trained
    root.mkdir()
    shutil.copytree(model_dir, root / "models" / "arch0")
    folder = make_folder(root / "mine", n=3)
    prepare_dataset(
        "synthetic", {"source": "folder", "root": str(folder)}, root / "data/prepared/synthetic"
    )
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    (root / "params.yaml").write_text(text.replace("  top_k: 1 ", "  top_k: 0 "))
    return root


def test_evaluate_stage_refuses_a_model_of_other_classes(trained, tmp_path, capsys):
    from search_project import run_stage

    project = _reprepared_project(trained, tmp_path / "project")
    prepared = load_prepared(trained[0])
    assert run_stage(project, "evaluate", "--params", "params.yaml") == 2
    err = capsys.readouterr().err
    trained_on = f"{prepared.num_classes} classes ({', '.join(prepared.classes)})"
    assert f"was trained on {trained_on}" in err
    assert "data/prepared/synthetic now has 3 classes (background, lesion, vessel)" in err
    assert "rerun the train stage" in err
    assert not (project / "results").exists()


@pytest.fixture(scope="module")
def stage_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data stages run and arch0 trained for 2 tiny epochs by the train stage."""
    from search_project import make_project, run_stage, tiny_params, tiny_train

    root = make_project(tmp_path_factory.mktemp("stage") / "p", tiny_train(tiny_params()))
    assert run_stage(root, "train") == 0
    return root


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("lr", 0.02, "train.lr 0.01 -> 0.02"),
        ("crop_size", [48, 48], "train.crop_size [32, 32] -> [48, 48]"),
        ("architectures", [{"name": "arch0", "genotype": "arch1"}], "train.architectures '"),
    ],
)
def test_evaluate_refuses_models_trained_with_other_params(
    stage_project, capsys, key, value, shown
):
    """Issue 29, item 4: evaluate checks each model against today's train params."""
    from search_project import run_stage, tiny_params, tiny_train, write_params

    params = tiny_train(tiny_params())
    params["train"][key] = value
    write_params(stage_project, params)
    try:
        capsys.readouterr()
        assert run_stage(stage_project, "evaluate") == 2
        err = capsys.readouterr().err
        assert "models/arch0/best.pt was trained with other params than params.yaml (" in err
        assert shown in err and "rerun the train stage first" in err, err
        assert not (stage_project / "results").exists()
    finally:
        write_params(stage_project, tiny_train(tiny_params()))
        shutil.rmtree(stage_project / "results", ignore_errors=True)


def test_evaluate_refuses_a_model_folder_the_params_do_not_train(stage_project, capsys):
    from search_project import run_stage

    stale = stage_project / "models" / "top0"
    shutil.copytree(stage_project / "models" / "arch0", stale)
    try:
        capsys.readouterr()
        assert run_stage(stage_project, "evaluate") == 2
        err = capsys.readouterr().err
        assert "models/top0 is not a model that params.yaml trains" in err, err
        assert "give arch0)" in err and not (stage_project / "results").exists()
    finally:
        shutil.rmtree(stale)
