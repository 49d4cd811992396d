import urllib.error

import pytest
import torch
from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

from segnas.errors import ConfigError
from segnas.stem import build_stem, stem_state_hash


def _checkpoint_name() -> str:
    return MobileNet_V2_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]


def test_stem_outputs_quarter_and_eighth():
    quarter, eighth = build_stem().eval()(torch.randn(1, 3, 64, 96))
    assert quarter.shape == (1, 24, 16, 24)
    assert eighth.shape == (1, 32, 8, 12)


def test_imagenet_weights_come_from_the_torch_hub_cache(tmp_path, monkeypatch):
    torch.manual_seed(0)
    reference = mobilenet_v2(weights=None)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(reference.state_dict(), checkpoints / _checkpoint_name())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    stem = build_stem("imagenet")
    assert torch.equal(stem.to_quarter[0][0].weight, reference.features[0][0].weight)
    assert torch.equal(stem.to_eighth[2].conv[0][0].weight, reference.features[6].conv[0][0].weight)


def test_imagenet_offline_without_cache_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr("torch.hub.download_url_to_file", no_network)
    with pytest.raises(ConfigError, match=r"hub/checkpoints.*stem.weights: none"):
        build_stem("imagenet")


def test_weights_from_a_path_full_or_stem_only(tmp_path):
    torch.manual_seed(1)
    full = mobilenet_v2(weights=None)
    torch.save(full.state_dict(), tmp_path / "full.pt")
    from_full = build_stem(str(tmp_path / "full.pt"))
    torch.save(from_full.state_dict(), tmp_path / "stem.pt")
    from_stem = build_stem(str(tmp_path / "stem.pt"))
    assert stem_state_hash(from_full) == stem_state_hash(from_stem)
    assert stem_state_hash(from_full) != stem_state_hash(build_stem())


def test_bad_weights_setting(tmp_path):
    with pytest.raises(ConfigError, match="neither 'imagenet', 'none' nor an existing file"):
        build_stem(str(tmp_path / "missing.pt"))
    torch.save({"something.else": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="does not fit the MobileNet-v2 stem"):
        build_stem(str(tmp_path / "other.pt"))


def test_untrusted_pickle_is_refused(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(ConfigError, match="cannot be loaded safely") as raised:
        build_stem(str(tmp_path / "evil.pt"))
    assert isinstance(raised.value.__cause__, pickle.UnpicklingError)
