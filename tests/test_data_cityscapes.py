import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label
from data_trees import make_cityscapes_tree, write_png
from PIL import Image

from segnas.data.cityscapes import cityscapes_classes, cityscapes_lut
from segnas.data.prepare import prepare_dataset
from segnas.data.prepared import load_prepared
from segnas.errors import DataError


def test_label_table_comes_from_cityscapesscripts():
    classes, palette = cityscapes_classes()
    assert len(classes) == 19 and classes[0] == "road" and classes[18] == "bicycle"
    lut = cityscapes_lut()
    for label_id in range(34):
        train_id = id2label[label_id].trainId
        assert lut[label_id] == (train_id if 0 <= train_id < 255 else 255)
    assert lut[34] == -1 and lut[200] == -1


def test_fake_cityscapes_tree_is_prepared_and_resized(tmp_path):
    raw = make_cityscapes_tree(tmp_path / "cs")
    spec = {"source": "cityscapes", "root": str(raw), "longer_side": 32}
    summary = prepare_dataset("cs", spec, tmp_path / "out", progress=False)
    assert summary["counts"] == {"train": 3, "val": 1}
    prepared = load_prepared(tmp_path / "out")
    assert prepared.num_classes == 19
    assert prepared.ids("train") == [
        "aachen_000000_000019",
        "aachen_000001_000019",
        "bremen_000000_000019",
    ]
    label = np.asarray(Image.open(prepared.label_path("lindau_000000_000019")))
    assert label.shape == (16, 32)
    assert Image.open(prepared.image_path("lindau_000000_000019")).size == (32, 16)
    # labelIds 0, 7, 8, 11, 21, 23, 24, 26, 33 -> 255, 0, 1, 2, 8, 10, 11, 13, 18
    assert set(np.unique(label)) <= {255, 0, 1, 2, 8, 10, 11, 13, 18}
    raw_label = np.asarray(
        Image.open(raw / "gtFine/val/lindau/lindau_000000_000019_gtFine_labelIds.png")
    )
    lut = cityscapes_lut()
    assert sum(summary["class_pixels"]["val"].values()) + summary["ignore_pixels"]["val"] == 512
    assert (lut[raw_label] == 255).any()


def test_unknown_label_id_is_an_error(tmp_path):
    raw = make_cityscapes_tree(tmp_path / "cs")
    bad = raw / "gtFine/train/bremen/bremen_000000_000019_gtFine_labelIds.png"
    write_png(bad, np.full((32, 64), 99, np.uint8))
    with pytest.raises(
        DataError, match=r"bremen_000000_000019_gtFine_labelIds.png has values \[99\]"
    ):
        prepare_dataset(
            "cs", {"source": "cityscapes", "root": str(raw)}, tmp_path / "o" / "cs", progress=False
        )
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
