import json

import numpy as np
import pytest
import torch

from segnas.data.dataset import read_pair
from segnas.data.prepare import prepare_dataset
from segnas.data.prepared import load_prepared
from segnas.data.stem_cache import StemCacheDataset, build_stem_cache, open_stem_cache
from segnas.data.transforms import TrainTransform, normalize_image
from segnas.errors import ArtifactError, ConfigError
from segnas.stem import build_stem, stem_state_hash


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep") / "s"
    spec = {"source": "synthetic", "num_images": {"train": 4}, "image_size": [40, 56]}
    prepare_dataset("s", spec, root, progress=False)
    return load_prepared(root)


@pytest.fixture(scope="module")
def stem():
    torch.manual_seed(0)
    return build_stem("none").eval()


@pytest.fixture()
def cache_dir(tmp_path, prepared, stem):
    build_stem_cache(
        prepared,
        prepared.ids("train"),
        tmp_path / "stem",
        stem,
        (32, 48),
        6,
        seed=7,
        batch_size=4,
        progress=False,
    )
    return tmp_path / "stem"


def test_cache_holds_the_stem_outputs_of_the_recorded_crops(cache_dir, prepared, stem):
    cache = open_stem_cache(cache_dir, expected={"stem_hash": stem_state_hash(stem)})
    assert cache.quarter.shape == (6, 24, 8, 12) and cache.quarter.dtype == np.float16
    assert cache.eighth.shape == (6, 32, 4, 6) and cache.eighth.dtype == np.float16
    assert cache.labels.shape == (6, 8, 12) and cache.labels.dtype == np.uint8
    assert isinstance(cache.quarter, np.memmap) and not cache.quarter.flags.writeable
    assert len(cache) == 6 and sorted(set(cache.ids)) == sorted(prepared.ids("train"))
    assert cache.header["crop_size"] == [32, 48] and cache.header["crop_seed"] == 7
    transform = TrainTransform((32, 48), seed=7)
    sample = cache.header["samples"][5]
    image, label = read_pair(prepared, sample["id"])
    params = transform.sample_params(image.height, image.width, 5)
    assert params.to_dict() == {k: sample[k] for k in ("scale", "top", "left", "flip")}
    crop, crop_label = transform.apply(image, label, params)
    with torch.no_grad():
        quarter, eighth = stem(normalize_image(crop)[None])
    assert torch.allclose(
        torch.from_numpy(cache.quarter[5].astype(np.float32)), quarter[0], atol=2e-2, rtol=1e-2
    )
    assert torch.allclose(
        torch.from_numpy(cache.eighth[5].astype(np.float32)), eighth[0], atol=2e-2, rtol=1e-2
    )
    assert np.array_equal(cache.labels[5], crop_label[::4, ::4])
    q, e, lab = StemCacheDataset(cache)[5]
    assert q.dtype == torch.float32 and e.shape == (32, 4, 6) and lab.dtype == torch.int64
    assert stem_state_hash(cache.load_stem()) == stem_state_hash(stem)
    bq, be, bl = cache.batch([5, 1])
    assert torch.equal(bq[0], q) and torch.equal(bl[0], lab)


def test_same_inputs_give_identical_caches(tmp_path, cache_dir, prepared, stem):
    build_stem_cache(
        prepared,
        prepared.ids("train"),
        tmp_path / "again",
        stem,
        (32, 48),
        6,
        seed=7,
        batch_size=3,
        progress=False,
    )
    for name in ("quarter.npy", "eighth.npy", "labels.npy", "header.json", "stem.pt"):
        assert (tmp_path / "again" / name).read_bytes() == (cache_dir / name).read_bytes()


def test_expected_fields_must_match(cache_dir):
    with pytest.raises(ArtifactError, match=r"header.json: stem_hash is '[0-9a-f]+' but 'abc'"):
        open_stem_cache(cache_dir, expected={"stem_hash": "abc"})
    with pytest.raises(ArtifactError, match=r"crop_size is \[32, 48\] but \[64, 64\]"):
        open_stem_cache(cache_dir, expected={"crop_size": (64, 64)})


def test_damaged_arrays_are_named(cache_dir):
    quarter = cache_dir / "quarter.npy"
    data = quarter.read_bytes()
    quarter.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="quarter.npy is truncated or corrupt"):
        open_stem_cache(cache_dir)
    quarter.write_bytes(data)
    np.save(cache_dir / "labels.npy", np.zeros((6, 8, 12), np.int16))
    with pytest.raises(ArtifactError, match="labels.npy: dtype of labels is 'int16' but 'uint8'"):
        open_stem_cache(cache_dir)


def test_tampered_header_and_checksums_are_caught(cache_dir):
    header = json.loads((cache_dir / "header.json").read_text())
    header["arrays"]["eighth"]["shape"] = [6, 32, 8, 8]
    (cache_dir / "header.json").write_text(json.dumps(header))
    with pytest.raises(ArtifactError, match=r"arrays.eighth.shape is \[6, 32, 8, 8\]"):
        open_stem_cache(cache_dir)


def test_checksum_verification(cache_dir):
    labels = np.load(cache_dir / "labels.npy")
    labels[0, 0, 0] ^= 1
    np.save(cache_dir / "labels.npy", labels)
    with pytest.raises(ArtifactError, match="labels.npy: sha256"):
        open_stem_cache(cache_dir)  # shape, dtype and size pass; the checksum does not


def test_missing_cache_and_bad_crop(tmp_path, prepared, stem):
    with pytest.raises(ArtifactError, match="header.json does not exist"):
        open_stem_cache(tmp_path / "none")
    with pytest.raises(ConfigError, match="at least 8x8"):
        build_stem_cache(prepared, prepared.ids("train"), tmp_path / "c", stem, (4, 48), 2, 0)
    assert list(tmp_path.iterdir()) == []


def test_odd_crop_sizes_follow_the_stem_rounding(tmp_path, prepared, stem):
    cache = build_stem_cache(
        prepared, prepared.ids("train"), tmp_path / "c", stem, (33, 41), 2, seed=0, progress=False
    )
    with torch.no_grad():
        quarter, eighth = stem(torch.zeros(1, 3, 33, 41))
    assert cache.quarter.shape[2:] == quarter.shape[2:] == (9, 11)
    assert cache.eighth.shape[2:] == eighth.shape[2:] == (5, 6)
    assert cache.labels.shape[1:] == (9, 11)
