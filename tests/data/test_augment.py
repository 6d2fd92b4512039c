import numpy as np
import pytest
import torch

from vitbench.data import BatchAugment, crop_flip, normalize


def batch(b=8, c=2, h=6, w=5):
    return torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8)


def test_crop_without_padding_or_flip_is_identity():
    x = batch()
    assert torch.equal(crop_flip(x, padding=0, hflip=False), x)
    out = BatchAugment((0.0, 0.0), (1.0, 1.0), crop_padding=0, hflip=False)(x, None)[0]
    assert torch.allclose(out, x.float() / 255, atol=1e-6)


def test_flip_only_gives_original_or_mirror_per_sample():
    torch.manual_seed(0)
    x = batch(b=64)
    out = crop_flip(x, padding=0, hflip=True)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all()
    assert 10 < mirrored.sum() < 54  # each sample flips with probability 1/2


def test_crop_is_a_window_of_the_zero_padded_image():
    torch.manual_seed(1)
    x, p = batch(b=32), 2
    out = crop_flip(x, padding=p, hflip=False)
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    h, w = x.shape[-2:]
    for i in range(len(x)):  # a test may loop; the code under test may not
        windows = [
            padded[i, :, dy : dy + h, dx : dx + w] for dy in range(2 * p + 1) for dx in range(2 * p + 1)
        ]
        assert any(torch.equal(out[i], win) for win in windows)
    assert not torch.equal(out, x)  # some sample moved


def test_crop_flip_follows_global_seed():
    x = batch()
    torch.manual_seed(3)
    a = crop_flip(x, 2, True)
    torch.manual_seed(3)
    assert torch.equal(a, crop_flip(x, 2, True))


def test_normalize_matches_hand_computation():
    x = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)  # (1, 2, 1, 2)
    out = normalize(x, mean=(0.5, 0.2), std=(0.25, 0.1))
    expected = torch.tensor([[[[-2.0, 2.0]], [[0.0, 2.0]]]])
    assert out.dtype == torch.float32 and torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("mixup_alpha,cutmix_alpha", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_mixup_gives_soft_targets_summing_to_one(mixup_alpha, cutmix_alpha):
    np.random.seed(0)
    aug = BatchAugment(
        (0.5,) * 2, (0.5,) * 2, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, num_classes=5
    )
    y = torch.arange(8) % 5
    x, t = aug(batch(), y)
    assert x.shape == (8, 2, 6, 5) and x.dtype == torch.float32
    assert t.shape == (8, 5) and t.dtype == torch.float32
    assert torch.allclose(t.sum(1), torch.ones(8))
    assert (
        t.gather(1, y[:, None]) >= t.gather(1, y.flip(0)[:, None]) - 1e-6
    ).any()  # own label carries weight


def test_mixup_odd_batch_is_one_hot():
    aug = BatchAugment((0.5,), (0.5,), mixup_alpha=0.8, num_classes=4)
    x, t = aug(batch(b=7, c=1), torch.tensor([0, 1, 2, 3, 0, 1, 2]))
    assert x.shape == (7, 1, 6, 5) and torch.equal(t.argmax(1), torch.tensor([0, 1, 2, 3, 0, 1, 2]))
    assert torch.equal(t.sum(1), torch.ones(7))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="crop_padding"):
        BatchAugment((0.5,), (0.5,), crop_padding=-1)
    with pytest.raises(ValueError, match="one value per channel"):
        BatchAugment((0.5, 0.5), (0.5,))
