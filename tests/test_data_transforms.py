import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from segnas.data.dataset import SegmentationDataset
from segnas.data.prepare import prepare_dataset
from segnas.data.prepared import load_prepared
from segnas.data.transforms import EvalTransform, TrainTransform, normalize_image
from segnas.stem import IMAGENET_MEAN, IMAGENET_STD


def pair(h=30, w=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 11, (h, w)).astype(
        np.uint8
    )


def test_normalisation_uses_imagenet_mean_and_std():
    image, _ = pair()
    out = normalize_image(image)
    expected = (image / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert out.dtype == torch.float32 and out.shape == (3, 30, 40)
    assert np.allclose(out.numpy(), expected.transpose(2, 0, 1), atol=1e-5)


def test_train_transform_depends_only_on_seed_epoch_and_index():
    image, label = pair()
    t = TrainTransform((16, 24), seed=3)
    first = [t(image, label, i) for i in range(5)]
    again = [t(image, label, i) for i in reversed(range(5))][::-1]
    for (a, b), (c, d) in zip(first, again, strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)
    assert first[0][0].shape == (3, 16, 24) and first[0][1].dtype == torch.int64
    t.set_epoch(1)
    assert not torch.equal(t(image, label, 0)[0], first[0][0])
    t.set_epoch(0)
    assert torch.equal(t(image, label, 0)[0], first[0][0])


def test_crops_larger_than_the_image_pad_labels_with_ignore():
    image, label = pair(10, 12)
    t = TrainTransform(32, scale_range=(1.0, 1.0), flip=False)
    out_img, out_lab = t(image, label, 0)
    assert out_lab.shape == (32, 32)
    assert (out_lab[10:, :] == 255).all() and (out_lab[:, 12:] == 255).all()
    assert torch.equal(out_lab[:10, :12], torch.from_numpy(label.astype(np.int64)))
    assert out_img[:, 10:, :].abs().max() < 0.02  # padding normalises to ~0


def test_flip_and_scale_are_applied_consistently():
    image, label = pair(20, 20)
    t = TrainTransform(20, scale_range=(1.0, 1.0), flip=True)
    for index in range(8):
        params = t.sample_params(20, 20, index)
        img, lab = t.apply(image, label, params)
        expect_img = image[:, ::-1] if params.flip else image
        expect_lab = label[:, ::-1] if params.flip else label
        assert np.array_equal(img, expect_img) and np.array_equal(lab, expect_lab)
    t2 = TrainTransform(8, scale_range=(2.0, 2.0), flip=False)
    _, lab = t2.apply(image, label, t2.sample_params(20, 20, 0))
    assert set(np.unique(lab)) <= set(np.unique(label))  # nearest: no new label values


def test_eval_transform_resizes_labels_nearest():
    image, label = pair(30, 40)
    img, lab = EvalTransform((15, 20))(image, label)
    assert img.shape == (3, 15, 20) and lab.shape == (15, 20)
    assert set(lab.unique().tolist()) <= set(np.unique(label).tolist())
    img, lab = EvalTransform()(image, label)
    assert lab.shape == (30, 40)


def test_loader_batches_do_not_depend_on_worker_count(tmp_path):
    spec = {"source": "synthetic", "num_images": {"train": 6}, "image_size": [32, 48]}
    prepare_dataset("s", spec, tmp_path / "s", progress=False)
    prepared = load_prepared(tmp_path / "s")
    dataset = SegmentationDataset(prepared, prepared.ids("train"), TrainTransform(24, seed=1))
    dataset.set_epoch(2)

    def batches(workers):
        loader = DataLoader(dataset, batch_size=3, num_workers=workers)
        return [b for b in loader]

    serial, parallel = batches(0), batches(2)
    for (a, b), (c, d) in zip(serial, parallel, strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)
    image, label = SegmentationDataset(prepared, prepared.ids("train"))[0]
    assert image.shape == (3, 32, 48) and label.dtype == torch.int64


@pytest.mark.parametrize("bad", [0, (4,), (-1, 5)])
def test_bad_crop_size(bad):
    with pytest.raises(ValueError, match="crop_size"):
        TrainTransform(bad)
