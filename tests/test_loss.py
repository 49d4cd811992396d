import torch
import torch.nn.functional as F

from segnas.loss import segmentation_loss
from segnas.metrics import IGNORE_INDEX


def _batch(seed: int, classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, classes, 3, 4, generator=generator)
    labels = torch.randint(0, classes, (3, 12, 16), generator=generator)
    labels[:, :2] = IGNORE_INDEX
    return logits, labels


def test_loss_is_cross_entropy_of_the_upsampled_logits_without_ignored_pixels() -> None:
    logits, labels = _batch(0)
    upsampled = F.interpolate(logits, size=(12, 16), mode="bilinear", align_corners=False)
    kept = labels != IGNORE_INDEX
    log_probs = upsampled.log_softmax(1).permute(0, 2, 3, 1)[kept]
    expected = -log_probs.gather(1, labels[kept][:, None]).mean()
    torch.testing.assert_close(segmentation_loss(logits, labels), expected)


def test_class_weights_weigh_each_pixel_by_its_label() -> None:
    logits, labels = _batch(1)
    weight = torch.tensor([0.5, 1.0, 2.0, 4.0, 0.25])
    upsampled = F.interpolate(logits, size=(12, 16), mode="bilinear", align_corners=False)
    kept = labels != IGNORE_INDEX
    log_probs = upsampled.log_softmax(1).permute(0, 2, 3, 1)[kept]
    pixel_weight = weight[labels[kept]]
    picked = log_probs.gather(1, labels[kept][:, None])[:, 0]
    expected = -(pixel_weight * picked).sum() / pixel_weight.sum()
    torch.testing.assert_close(segmentation_loss(logits, labels, weight=weight), expected)


def test_logits_at_label_size_are_not_resized() -> None:
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 6, 8, generator=generator)
    labels = torch.randint(0, 3, (2, 6, 8), generator=generator)
    assert torch.equal(segmentation_loss(logits, labels), F.cross_entropy(logits, labels))


def test_gradient_reaches_the_low_resolution_logits() -> None:
    logits, labels = _batch(3)
    logits.requires_grad_()
    segmentation_loss(logits, labels).backward()
    assert logits.grad is not None and logits.grad.shape == logits.shape
    assert logits.grad.abs().sum() > 0
