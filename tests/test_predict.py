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


def _predict(*argv: str | Path) -> int:
    return main(["predict", *map(str, argv), "--device", "cpu"])


def test_predict_refuses_to_overwrite_a_file_it_did_not_write(tmp_path, capsys):
    folder = tmp_path / "u" / "a"
    folder.mkdir(parents=True)
    Image.new("RGB", (16, 16)).save(folder / "x.png")
    (folder / "x_mask.png").write_bytes(b"the user's own mask")
    assert _predict(folder / "x.png", "--model", tmp_path / "m.pt", "--out", folder) == 2
    err = capsys.readouterr().err
    assert str(folder / "x_mask.png") in err and "--overwrite" in err
    assert (folder / "x_mask.png").read_bytes() == b"the user's own mask"
    assert not (folder / "x_overlay.png").exists()
    # the second output name: an existing overlay in another --out folder
    out = tmp_path / "out"
    out.mkdir()
    (out / "x_overlay.png").write_bytes(b"kept")
    assert _predict(folder / "x.png", "--model", tmp_path / "m.pt", "--out", out) == 2
    assert str(out / "x_overlay.png") in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["x_overlay.png"]


@pytest.mark.parametrize("output", ["x_mask.png", "x_overlay.png"])
def test_predict_never_writes_over_an_input_even_with_overwrite(tmp_path, capsys, output):
    folder = tmp_path / "u" / "b"
    folder.mkdir(parents=True)
    Image.new("RGB", (16, 16)).save(folder / "x.png")
    Image.new("RGB", (16, 16), (1, 2, 3)).save(folder / output)
    before = (folder / output).read_bytes()
    argv = [folder / "x.png", folder / output, "--model", tmp_path / "m.pt", "--out", folder]
    assert _predict(*argv, "--overwrite") == 2
    err = capsys.readouterr().err
    assert f"output {folder / output} is the input image" in err
    assert (folder / output).read_bytes() == before


def test_predict_overwrite_replaces_earlier_predictions(checkpoint, tmp_path, capsys):
    ckpt, image = checkpoint
    out = tmp_path / "out"
    assert _predict(image, "--model", ckpt, "--out", out) == 0
    assert _predict(image, "--model", ckpt, "--out", out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _predict(image, "--model", ckpt, "--out", out, "--overwrite") == 0


def test_predict_removes_its_outputs_when_a_later_image_fails(checkpoint, tmp_path, capsys):
    ckpt, image = checkpoint
    broken = tmp_path / "broken.png"
    Image.new("RGB", (64, 64), (9, 9, 9)).save(broken)
    broken.write_bytes(broken.read_bytes()[:60])  # header intact, pixel data cut off
    out = tmp_path / "out"
    assert _predict(image, broken, "--model", ckpt, "--out", out) == 2
    assert "broken.png" in capsys.readouterr().err
    assert not out.exists()


def test_predict_names_the_pixel_limit_of_too_large_images(tmp_path, capsys, monkeypatch):
    image = tmp_path / "big.png"
    Image.new("RGB", (30, 30)).save(image)
    out = tmp_path / "out"
    assert _predict(image, "--model", tmp_path / "m.pt", "--out", out, "--max-pixels", 100) == 2
    err = capsys.readouterr().err
    assert "big.png is too large" in err and "100 pixels" in err
    assert "--max-pixels" in err and "SEGNAS_MAX_IMAGE_PIXELS" in err
    # PIL's own DecompressionBombError (over twice the limit) and warning (over the limit)
    for limit in ("400", "800"):
        monkeypatch.setenv("SEGNAS_MAX_IMAGE_PIXELS", limit)
        assert _predict(image, "--model", tmp_path / "m.pt", "--out", out) == 2
        assert f"more than {limit} pixels" in capsys.readouterr().err
    assert not out.exists()
    monkeypatch.setenv("SEGNAS_MAX_IMAGE_PIXELS", "lots")
    assert _predict(image, "--model", tmp_path / "m.pt", "--out", out) == 2
    assert "SEGNAS_MAX_IMAGE_PIXELS='lots'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _predict(image, "--model", tmp_path / "m.pt", "--max-pixels", "0")
