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
