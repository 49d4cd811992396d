"""Acceptance on the real CamVid (../shared/data/CamVid); skipped when it is absent."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segnas.data.download import verify_tree
from segnas.data.prepare import prepare_dataset
from segnas.data.prepared import load_prepared

CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "CamVid"
pytestmark = [
    pytest.mark.camvid,
    pytest.mark.skipif(not CAMVID.is_dir(), reason=f"real CamVid not found at {CAMVID}"),
]


def test_prepare_real_camvid_matches_a_direct_count(tmp_path):
    summary = prepare_dataset(
        "camvid", {"source": "camvid", "root": str(CAMVID)}, tmp_path / "camvid", progress=False
    )
    assert summary["counts"] == {"train": 367, "val": 101, "test": 233}
    assert summary["num_classes"] == 11
    prepared = load_prepared(tmp_path / "camvid")
    for split in ("train", "val", "test"):
        counts = np.zeros(256, dtype=np.int64)
        for path in (CAMVID / f"{split}annot").iterdir():
            counts += np.bincount(np.asarray(Image.open(path)).ravel(), minlength=256)
        expected = {name: int(counts[i]) for i, name in enumerate(prepared.classes)}
        assert summary["class_pixels"][split] == expected
        assert summary["ignore_pixels"][split] == int(counts[11])  # void -> ignored
        total = sum(expected.values())
        assert summary["class_frequencies"][split]["road"] == pytest.approx(counts[3] / total)


def test_shared_copy_matches_the_embedded_download_manifest():
    verify_tree(CAMVID)
