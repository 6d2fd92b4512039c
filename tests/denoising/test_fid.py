"""FID in vitbench-CNN features: ~0 for a set against itself, rising with noise; the feature CNN's checks."""

import pytest
import torch

from vitbench.classification.cnn import resnet
from vitbench.classification.teacher import TeacherError
from vitbench.denoising.fid import FeatureCNN, frechet_distance, load_feature_cnn, sample_accuracy


@pytest.fixture(scope="module")
def features() -> FeatureCNN:
    torch.manual_seed(0)
    net = resnet(num_classes=10, in_chans=1, channels=[8, 16, 32, 32])
    return FeatureCNN(net, [0.5], [0.5])


def _images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # A smooth random image per sample: blurred noise in [-1, 1] (N, 1, 28, 28).
    coarse = torch.rand(n, 1, 7, 7, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=28, mode="bilinear", align_corners=False)


def test_a_set_against_itself_is_about_zero_and_noise_raises_it_monotonically(features):
    real = _images(400, 0)
    assert frechet_distance(features, real, real) == pytest.approx(0.0, abs=1e-3)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(real.shape, generator=g)
    fids = [frechet_distance(features, real, (real + s * noise).clamp(-1, 1)) for s in (0.05, 0.2, 0.5, 1.0)]
    assert all(a < b for a, b in zip(fids, fids[1:], strict=False)), fids
    assert fids[0] > 0


def test_features_have_the_cnn_width_and_sample_accuracy_counts_matches(features):
    images = _images(12, 2)
    assert features(images).shape == (12, 32) and features.num_features == 32
    predicted = features.classify(images)
    labels = predicted.clone()
    labels[:3] = (labels[:3] + 1) % 10  # three wrong on purpose
    assert sample_accuracy(features, images, labels) == pytest.approx(9 / 12)


def test_feature_cnn_stays_frozen(features):
    features.train()
    assert not features.training and not features.net.training
    assert not any(p.requires_grad for p in features.parameters())


def test_missing_and_foreign_feature_cnns_are_refused_with_the_command(tmp_path):
    with pytest.raises(
        TeacherError, match=r"feature CNN checkpoint .*none.ckpt does not exist; make one with `make teacher`"
    ):
        load_feature_cnn(tmp_path / "none.ckpt", "fashion_mnist", 28, 1, 10)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(TeacherError, match="is not a readable vitbench model=cnn checkpoint"):
        load_feature_cnn(garbage, "fashion_mnist", 28, 1, 10)
