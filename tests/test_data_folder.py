import numpy as np
import pytest
import yaml
from data_trees import random_pair, write_png
from PIL import Image

from segnas.data.prepare import prepare_dataset
from segnas.data.prepared import load_prepared
from segnas.errors import ConfigError, DataError


def make_folder(root, n=12, splits=None, classes=None):
    classes = classes or {
        "names": ["background", "lesion", "vessel"],
        "ignore_index": 7,
        "colors": [[0, 0, 0], [255, 0, 0], [0, 0, 255]],
    }
    (root / "images").mkdir(parents=True)
    (root / "classes.yaml").write_text(yaml.safe_dump(classes))
    for i in range(n):
        image, label = random_pair(i, size=(16, 20), values=[0, 1, 2, 7])
        sub = splits[i % len(splits)] if splits else ""
        (root / "images" / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "images" / sub / f"case{i:02d}.jpg")
        write_png(root / "masks" / sub / f"case{i:02d}.png", label)
    return root


def test_flat_folder_is_split_by_hash_and_ignore_is_mapped(tmp_path):
    root = make_folder(tmp_path / "f", n=30)
    spec = {"source": "folder", "root": str(root), "val_fraction": 0.2, "test_fraction": 0.2}
    summary = prepare_dataset("f", spec, tmp_path / "out", seed=3, progress=False)
    assert sum(summary["counts"].values()) == 30
    assert set(summary["counts"]) == {"train", "val", "test"}
    prepared = load_prepared(tmp_path / "out")
    assert prepared.classes == ["background", "lesion", "vessel"]
    assert prepared.palette[1] == (255, 0, 0)
    image_id = prepared.index.loc[0, "id"]
    raw = np.asarray(Image.open(root / "masks" / f"{image_id}.png"))
    label = np.asarray(Image.open(prepared.label_path(image_id)))
    assert np.array_equal(label, np.where(raw == 7, 255, raw))
    assert Image.open(prepared.image_path(image_id)).format == "PNG"
    again = prepare_dataset("f", spec, tmp_path / "out2", seed=3, progress=False)
    assert again["counts"] == summary["counts"]


def test_split_subdirectories_are_used(tmp_path):
    root = make_folder(tmp_path / "f", n=6, splits=["train", "val"])
    summary = prepare_dataset(
        "f", {"source": "folder", "root": str(root)}, tmp_path / "o", progress=False
    )
    assert summary["counts"] == {"train": 3, "val": 3}


def test_folder_errors_name_the_file(tmp_path):
    root = make_folder(tmp_path / "f", n=4)
    (root / "masks" / "case02.png").unlink()
    with pytest.raises(DataError, match="case02.jpg has no label"):
        prepare_dataset(
            "f", {"source": "folder", "root": str(root)}, tmp_path / "o" / "f", progress=False
        )
    bad = make_folder(tmp_path / "g", n=2, classes={"names": []})
    with pytest.raises(ConfigError, match="classes.yaml: 'names' must be a non-empty list"):
        prepare_dataset("g", {"source": "folder", "root": str(bad)}, tmp_path / "o" / "g")
    assert not any((tmp_path / "o").iterdir())


def _prepare(root, out):
    return prepare_dataset("f", {"source": "folder", "root": str(root)}, out, progress=False)


def test_binary_masks_saved_as_0_255_are_refused_naming_the_class(tmp_path):
    root = make_folder(tmp_path / "f", n=4, classes={"names": ["background", "lesion"]})
    for mask in (root / "masks").glob("*.png"):
        write_png(mask, np.where(np.asarray(Image.open(mask)) > 0, 255, 0).astype(np.uint8))
    with pytest.raises(DataError, match=r"'lesion' \(mask value 1\) has no pixel"):
        _prepare(root, tmp_path / "o" / "f")
    assert not (tmp_path / "o" / "f").exists()


def test_16_bit_images_are_refused_naming_the_file(tmp_path):
    root = make_folder(tmp_path / "f", n=3)
    deep = root / "images" / "case01.png"
    (root / "images" / "case01.jpg").unlink()
    Image.fromarray(np.full((16, 20), 40000, dtype=np.uint16)).save(deep)
    assert Image.open(deep).mode.startswith("I")
    with pytest.raises(DataError, match=r"case01\.png .*16-bit"):
        _prepare(root, tmp_path / "o" / "f")


def test_a_class_with_no_pixels_in_a_split_is_warned_about(tmp_path, capsys):
    root = make_folder(tmp_path / "f", n=4, splits=["train", "val"])
    for mask in (root / "masks" / "val").glob("*.png"):
        write_png(mask, np.where(np.asarray(Image.open(mask)) == 2, 0, 1).astype(np.uint8))
    _prepare(root, tmp_path / "o" / "f")
    assert "class 'vessel' has 0 pixels in split 'val'" in capsys.readouterr().err


def test_file_names_with_surrounding_spaces_are_refused_at_prepare(tmp_path):
    root = make_folder(tmp_path / "f", n=3)
    (root / "images" / "case01.jpg").rename(root / "images" / " case01.jpg")
    (root / "masks" / "case01.png").rename(root / "masks" / " case01.png")
    with pytest.raises(DataError, match=r"' case01\.jpg'"):
        _prepare(root, tmp_path / "o" / "f")


def _prepare_stage(tmp_path, monkeypatch, classes):
    """The prepare stage on a folder dataset with ``classes`` as its classes.yaml."""
    from test_data_stages import PARAMS, stage

    root = make_folder(tmp_path / "f", n=3, classes=classes)
    monkeypatch.chdir(tmp_path)
    params = {**PARAMS, "datasets": {"tiny": {"source": "folder", "root": str(root)}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return stage("prepare")(["--params", "params.yaml"]), root / "classes.yaml"


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        (
            {"names": ["background", "lesion", "lesion"]},
            "names gives 'lesion' to class 1 ('lesion') and class 2 ('lesion')",
        ),
        (
            {
                "names": ["background", "lesion", "vessel"],
                "ignore_index": 7,
                "colors": [[0, 0, 0], [255, 0, 0], [255, 0, 0]],
            },
            "colors gives [255, 0, 0] to class 1 ('lesion') and class 2 ('vessel')",
        ),
    ],
)
def test_prepare_refuses_a_class_name_or_colour_given_twice(
    tmp_path, monkeypatch, capsys, classes, expected
):
    classes = {"ignore_index": 7, **classes}
    code, path = _prepare_stage(tmp_path, monkeypatch, classes)
    assert code == 2
    err = capsys.readouterr().err
    assert f"{path}: {expected}" in err
    assert not (tmp_path / "data" / "prepared").exists()


@pytest.mark.parametrize("colour", [[256, 0, 0], [0, -1, 0], [0, 0, 1.5], [0, 0, "red"]])
def test_prepare_refuses_colours_outside_0_255_naming_the_class(
    tmp_path, monkeypatch, capsys, colour
):
    classes = {
        "names": ["background", "lesion", "vessel"],
        "ignore_index": 7,
        "colors": [[0, 0, 0], colour, [0, 0, 255]],
    }
    code, path = _prepare_stage(tmp_path, monkeypatch, classes)
    assert code == 2
    err = capsys.readouterr().err
    assert f"{path}: colors of class 'lesion' is {colour!r}" in err and "0..255" in err
    assert not (tmp_path / "data" / "prepared").exists()
