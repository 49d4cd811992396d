import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_trees import make_camvid_tree, write_png
from PIL import Image

from segnas.data.prepare import prepare_dataset
from segnas.data.prepared import load_prepared, pixel_column
from segnas.errors import ConfigError, DataError


def camvid(root, **extra):
    return {"source": "camvid", "root": str(root), **extra}


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


def test_camvid_layout_is_prepared_with_void_ignored(tmp_path):
    raw = make_camvid_tree(tmp_path / "raw")
    summary = prepare_dataset("tiny", camvid(raw), tmp_path / "out" / "tiny", progress=False)
    assert summary["counts"] == {"train": 3, "val": 2, "test": 2}
    prepared = load_prepared(tmp_path / "out" / "tiny")
    assert prepared.num_classes == 11 and prepared.ignore_index == 255
    assert len(prepared.palette) == 11
    assert prepared.ids("val") == ["val_000", "val_001"]
    for image_id in prepared.ids("train"):
        raw_label = np.asarray(Image.open(raw / "trainannot" / f"{image_id}.png"))
        label = np.asarray(Image.open(prepared.label_path(image_id)))
        assert np.array_equal(label, np.where(raw_label == 11, 255, raw_label))
        # images already in the right form are copied, not re-encoded
        assert (
            prepared.image_path(image_id).read_bytes()
            == (raw / "train" / f"{image_id}.png").read_bytes()
        )
        row = prepared.index.set_index("id").loc[image_id]
        for value, name in enumerate(prepared.classes):
            assert row[pixel_column(name)] == int((raw_label == value).sum())
        assert row["pixels_ignore"] == int((raw_label == 11).sum())
    assert summary["class_pixels"]["train"] == prepared.class_pixels("train")
    freqs = summary["class_frequencies"]["test"]
    assert sum(freqs.values()) == pytest.approx(1.0)


def test_longer_side_resizes_images_bilinear_and_labels_nearest(tmp_path):
    raw = make_camvid_tree(tmp_path / "raw", {"train": 1}, size=(30, 40))
    prepare_dataset(
        "r", camvid(raw, splits=["train"], longer_side=20), tmp_path / "r", progress=False
    )
    prepared = load_prepared(tmp_path / "r")
    image = Image.open(prepared.image_path("train_000"))
    label = np.asarray(Image.open(prepared.label_path("train_000")))
    assert image.size == (20, 15) and label.shape == (15, 20)
    assert set(np.unique(label)) <= set(range(11)) | {255}
    assert prepared.index.loc[0, "height"] == 15


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _missing_label(raw):
    (raw / "trainannot" / "train_001.png").unlink()
    return "train_001.png"


def _size_mismatch(raw):
    write_png(raw / "trainannot" / "train_001.png", np.zeros((10, 10), np.uint8))
    return "train_001.png"


def _bad_value(raw):
    write_png(raw / "valannot" / "val_000.png", np.full((24, 32), 42, np.uint8))
    return "val_000.png"


def _truncated_image(raw):
    truncate(raw / "test" / "test_001.png")
    return "test_001.png"


def _truncated_label(raw):
    truncate(raw / "testannot" / "test_000.png")
    return "test_000.png"


def _empty_split(raw):
    for path in (raw / "val").iterdir():
        path.unlink()
    return "is empty"


def _missing_split(raw):
    shutil.rmtree(raw / "valannot")
    return "valannot"


BAD_INPUTS = {
    "missing label": (_missing_label, "has no label"),
    "size mismatch": (_size_mismatch, "size mismatch"),
    "label value": (_bad_value, "values [42] outside the class set"),
    "truncated image": (_truncated_image, "truncated or corrupt"),
    "truncated label": (_truncated_label, "truncated or corrupt"),
    "empty split": (_empty_split, "val"),
    "missing split": (_missing_split, "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_stops_with_a_named_file_and_leaves_nothing(tmp_path, case):
    raw = make_camvid_tree(tmp_path / "raw")
    breaker, message = BAD_INPUTS[case]
    file_hint = breaker(raw)
    with pytest.raises(DataError) as info:
        prepare_dataset("d", camvid(raw), tmp_path / "out" / "d", progress=False)
    assert message in str(info.value)
    assert file_hint in str(info.value)
    assert leftovers(tmp_path / "out") == []


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DataError, match="CamVid root .*nowhere does not exist"):
        prepare_dataset("d", camvid(tmp_path / "nowhere"), tmp_path / "out" / "d", progress=False)
    assert leftovers(tmp_path / "out") == []


def test_failed_rerun_keeps_the_previous_output(tmp_path):
    raw = make_camvid_tree(tmp_path / "raw")
    out = tmp_path / "out" / "d"
    prepare_dataset("d", camvid(raw), out, progress=False)
    before = (out / "index.csv").read_bytes()
    _bad_value(raw)
    with pytest.raises(DataError):
        prepare_dataset("d", camvid(raw), out, progress=False)
    assert (out / "index.csv").read_bytes() == before
    assert leftovers(tmp_path / "out") == ["d"]


def test_skip_policy_lists_bad_files_in_the_summary(tmp_path):
    raw = make_camvid_tree(tmp_path / "raw")
    _truncated_image(raw)
    _missing_label(raw)
    summary = prepare_dataset("d", camvid(raw, on_bad_file="skip"), tmp_path / "d", progress=False)
    skipped = {(s["split"], s["id"]) for s in summary["skipped"]}
    assert skipped == {("test", "test_001"), ("train", "train_001")}
    assert all(
        "test_001.png" in s["reason"] or "train_001.png" in s["reason"] for s in summary["skipped"]
    )
    assert summary["counts"] == {"train": 2, "val": 2, "test": 1}
    assert json.loads((tmp_path / "d" / "summary.json").read_text())["skipped"]
    index = pd.read_csv(tmp_path / "d" / "index.csv")
    assert "test_001" not in set(index["id"])


def test_skipping_every_file_of_a_split_is_still_an_error(tmp_path):
    raw = make_camvid_tree(tmp_path / "raw", {"train": 1, "val": 1})
    _bad_value(raw)
    with pytest.raises(DataError, match="split 'val' has no usable images"):
        prepare_dataset(
            "d",
            camvid(raw, splits=["train", "val"], on_bad_file="skip"),
            tmp_path / "o" / "d",
            progress=False,
        )
    assert leftovers(tmp_path / "o") == []


def test_spec_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.x\.rooot: unknown key \(did you mean 'root'"):
        prepare_dataset("x", {"source": "camvid", "rooot": "a"}, tmp_path / "x")
    with pytest.raises(ConfigError, match=r"datasets\.x\.source: 'kitti' is not one of"):
        prepare_dataset("x", {"source": "kitti"}, tmp_path / "x")
    with pytest.raises(ConfigError, match=r"datasets\.x\.root: required key is missing"):
        prepare_dataset("x", {"source": "folder"}, tmp_path / "x")
    with pytest.raises(ConfigError) as info:
        prepare_dataset("x", {"source": "folder", "root": "a", "splits": ["train"]}, tmp_path / "x")
    assert str(info.value) == (
        "datasets.x.splits: not a key of this source (its keys: source, on_bad_file, "
        "longer_side, root, val_fraction, test_fraction)"
    )
    with pytest.raises(ConfigError, match="on_bad_file"):
        prepare_dataset(
            "x", camvid(make_camvid_tree(tmp_path / "raw"), on_bad_file="maybe"), tmp_path / "x"
        )
