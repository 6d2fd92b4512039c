"""MAE's masks and loss: how many patches stay, who decides which, and what the loss looks at."""

import pytest
import torch

from vitbench.pretraining.masking import (
    check_mask_ratio,
    mask_generator,
    masked_mse,
    patch_targets,
    random_masking,
    visible_count,
)


@pytest.mark.parametrize(
    ("n", "ratio", "kept"), [(16, 0.75, 4), (16, 0.7, 5), (49, 0.75, 12), (196, 0.75, 49), (10, 0.25, 8)]
)
def test_exactly_round_one_minus_ratio_times_n_patches_stay(n, ratio, kept):
    assert visible_count(n, ratio) == kept == round((1 - ratio) * n)
    idx_keep, mask = random_masking(32, n, ratio, torch.Generator().manual_seed(0))
    assert idx_keep.shape == (32, kept) and mask.shape == (32, n)
    assert (mask.sum(1) == n - kept).all()  # per image, not on average
    for keep, m in zip(idx_keep, mask, strict=True):
        assert len(set(keep.tolist())) == kept  # no patch kept twice
        assert (m[keep] == 0).all()  # the kept ones are exactly the unmasked ones


def test_the_generator_alone_decides_the_pattern():
    first = random_masking(8, 16, 0.75, torch.Generator().manual_seed(3))
    torch.manual_seed(123)  # the global generator plays no part
    again = random_masking(8, 16, 0.75, torch.Generator().manual_seed(3))
    other = random_masking(8, 16, 0.75, torch.Generator().manual_seed(4))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])
    assert len({tuple(m.tolist()) for m in first[1]}) > 1  # each image of a batch its own pattern


def test_mask_generators_are_a_function_of_their_keys():
    assert torch.equal(
        torch.rand(4, generator=mask_generator(0, 1, 2, 0)),
        torch.rand(4, generator=mask_generator(0, 1, 2, 0)),
    )
    draws = {tuple(torch.rand(2, generator=mask_generator(0, 0, b, 0)).tolist()) for b in range(50)}
    assert len(draws) == 50  # neighbouring batches (and epochs, ranks) draw differently


def test_the_loss_is_taken_on_masked_patches_only():
    torch.manual_seed(0)
    target = torch.randn(2, 16, 49)
    _, mask = random_masking(2, 16, 0.75, torch.Generator().manual_seed(0))
    wrong = target + 1.0  # every value off by 1: squared error 1 per patch
    visible_exact = torch.where(mask.bool().unsqueeze(-1), wrong, target)
    masked_exact = torch.where(mask.bool().unsqueeze(-1), target, wrong)
    assert masked_mse(wrong, target, mask) == pytest.approx(1.0)  # the full loss
    assert masked_mse(visible_exact, target, mask) == pytest.approx(1.0)  # visible patches do not count
    assert masked_mse(masked_exact, target, mask) == 0.0


def test_the_loss_is_the_mean_over_masked_patches_of_the_per_patch_mean_error():
    pred, target = torch.zeros(1, 4, 2), torch.tensor([[[1.0, 3.0], [2.0, 2.0], [5.0, 5.0], [0.0, 4.0]]])
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    # per patch: (1 + 9) / 2 = 5, (25 + 25) / 2 = 25, (0 + 16) / 2 = 8 -> (5 + 25 + 8) / 3
    assert masked_mse(pred, target, mask) == pytest.approx(38 / 3)


def test_the_normalised_target_by_hand():
    image = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)  # 2x2 patches of 2x2 pixels
    raw = patch_targets(image, 2, norm_pix=False)
    assert raw.shape == (1, 4, 4)
    assert raw[0, 0].tolist() == [0, 1, 4, 5] and raw[0, 3].tolist() == [10, 11, 14, 15]  # row-major grid
    norm = patch_targets(image, 2, norm_pix=True)
    # Patch 0: mean 2.5, unbiased variance ((2.5^2 + 1.5^2) * 2) / 3 = 17 / 3, as MAE's norm_pix_loss.
    expected = (torch.tensor([0.0, 1, 4, 5]) - 2.5) / (17 / 3 + 1e-6) ** 0.5
    assert torch.allclose(norm[0, 0], expected)
    assert torch.allclose(norm[0, 3], expected)  # every patch of this ramp is the same after normalising


@pytest.mark.parametrize(
    ("ratio", "message"),
    [
        (1.0, "model.mask_ratio=1.0 must lie in [0, 1)"),
        (-0.1, "model.mask_ratio=-0.1 must lie in [0, 1)"),
        (0.99, "model.mask_ratio=0.99 leaves no patch visible of the 16 patches"),
        (0.0, "model.mask_ratio=0.0 leaves no patch masked"),
    ],
)
def test_a_mask_ratio_that_leaves_nothing_to_learn_is_refused(ratio, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        check_mask_ratio(ratio, 16)
