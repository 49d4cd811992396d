"""``segnas predict``: palette masks and overlays at the input image's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from config_values import train_config
from PIL import Image

from segnas.cli import main
from segnas.data.prepare import prepare_dataset
from segnas.data.prepared import load_prepared
from segnas.final_training import train_model
from segnas.predict import colourise, overlay
from segnas.published import resolve_genotype
from segnas.training_data import build_datasets


def test_colourise_uses_the_palette_and_blacks_out_ignored():
    palette = [(10, 20, 30), (200, 100, 0)]
    rgb = colourise(np.array([[0, 1], [255, 1]], dtype=np.uint8), palette)
    assert rgb[0, 0].tolist() == [10, 20, 30] and rgb[0, 1].tolist() == [200, 100, 0]
    assert rgb[1, 0].tolist() == [0, 0, 0]
    blended = overlay(np.full((1, 1, 3), 100, np.uint8), np.full((1, 1, 3), 200, np.uint8))
    assert blended[0, 0].tolist() == [150, 150, 150]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("predict")
    spec = {"source": "synthetic", "num_images": {"train": 4, "test": 1}, "image_size": [48, 64]}
    prepare_dataset("synthetic", spec, base / "data", progress=False)
    prepared = load_prepared(base / "data")
    config = train_config(epochs=1, batch_size=4, crop_size=(32, 32), input_size=(24, 32))
    train_set, _ = build_datasets(prepared, config, val_split=None)
    result = train_model(
        resolve_genotype("arch0"),
        train_set,
        None,
        prepared.num_classes,
        config,
        base / "model",
        classes=prepared.classes,
        palette=prepared.palette,
    )
    return result.last, prepared.image_path(prepared.ids("test")[0])


def test_predict_command_writes_masks_and_overlays(checkpoint, tmp_path, capsys):
    ckpt, image = checkpoint
    out = tmp_path / "out"
    assert (
        main(["predict", str(image), "--model", str(ckpt), "--out", str(out), "--device", "cpu"])
        == 0
    )
    assert "1 image(s)" in capsys.readouterr().out
    mask = np.asarray(Image.open(out / f"{image.stem}_mask.png"))
    assert mask.shape == (48, 64, 3)
    palette = {tuple(c) for c in load_prepared(image.parents[2]).palette}
    assert {tuple(c) for c in mask.reshape(-1, 3)} <= palette
    assert Image.open(out / f"{image.stem}_overlay.png").size == (64, 48)


def test_predict_names_a_missing_checkpoint(tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.new("RGB", (16, 16)).save(image)
    assert main(["predict", str(image), "--model", str(tmp_path / "none.pt")]) == 2
    assert "none.pt does not exist" in capsys.readouterr().err


def test_predict_refuses_inputs_whose_outputs_would_overwrite_each_other(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (16, 16)).save(tmp_path / folder / "x.png")
    out = tmp_path / "out"
    argv = [str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")]
    assert main(["predict", *argv, "--model", str(tmp_path / "m.pt"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "x_mask.png" in err and argv[0] in err and argv[1] in err
    assert not out.exists()
