"""What MAE learns from: which patches an image keeps, and the loss on the ones it hides.

He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners" (arXiv 2111.06377), section 3:
random sampling of patches without replacement (a per-image shuffle, the first ``(1 - ratio) N``
kept), and the mean squared error on the masked patches only, against each patch's pixels
normalised by its own mean and variance (``norm_pix_loss``, their better target).

Departure: the number of visible patches is ``round((1 - ratio) N)`` (MAE's reference code and
lightly floor it with ``int``), so 0.75 of 16 patches keeps exactly 4 and 0.7 keeps 5, not 4.
"""

from __future__ import annotations

import numpy as np
import torch
from lightly.models.utils import normalize_mean_var, patchify
from torch import Tensor


def visible_count(num_patches: int, mask_ratio: float) -> int:
    """How many of ``num_patches`` an image keeps: ``round((1 - mask_ratio) * num_patches)``."""
    return round((1.0 - mask_ratio) * num_patches)


def check_mask_ratio(mask_ratio: float, num_patches: int) -> None:
    """Raise ValueError unless ``mask_ratio`` lies in [0, 1) and leaves at least one patch visible
    and one masked (the loss is taken on the masked ones)."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(
            f"model.mask_ratio={mask_ratio} must lie in [0, 1): the fraction of patches hidden from the "
            "encoder; 0.75 as in MAE."
        )
    keep = visible_count(num_patches, mask_ratio)
    if not 1 <= keep < num_patches:
        what = "no patch visible" if keep < 1 else "no patch masked (the loss is taken on masked patches)"
        low, high = 0.5 / num_patches, 1 - 0.5 / num_patches
        raise ValueError(
            f"model.mask_ratio={mask_ratio} leaves {what} of the {num_patches} patches; choose it in "
            f"({low:.3f}, {high:.3f}), e.g. 0.75 as in MAE."
        )


def mask_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded by ``keys`` (e.g. seed, epoch, batch, rank) through numpy's SeedSequence,
    so that nearby keys give unrelated streams and a resumed run draws what the unbroken one drew."""
    seed = int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed)


def random_masking(
    batch_size: int,
    num_patches: int,
    mask_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """A random subset of patches per image, kept, the rest masked.

    The noise is drawn on the CPU from ``generator`` (torch's default one when None), so the pattern
    depends on the generator alone, whatever the device.

    Returns:
        ``idx_keep (B, K)`` int64, the kept patch indices in ``[0, N)`` with ``K = visible_count(N,
        mask_ratio)``, and ``mask (B, N)`` float, 1 where a patch is masked, 0 where it is kept.
    """
    keep = visible_count(num_patches, mask_ratio)
    noise = torch.rand(batch_size, num_patches, generator=generator)  # (B, N)
    idx_keep = noise.argsort(dim=1)[:, :keep]  # (B, K): the K smallest noises
    mask = torch.ones(batch_size, num_patches).scatter_(1, idx_keep, 0.0)  # (B, N)
    return idx_keep.to(device), mask.to(device)


def patch_targets(images: Tensor, patch_size: int, norm_pix: bool = True) -> Tensor:
    """What the decoder predicts: images ``(B, C, H, W)`` -> patches ``(B, N, p * p * C)`` (row-major
    grid; each patch ``(p, q, c)``), each normalised by its own mean and (unbiased) variance, eps
    1e-6, as MAE's ``norm_pix_loss``."""
    patches = patchify(images, patch_size)  # (B, N, p*p*C)
    return normalize_mean_var(patches, dim=-1) if norm_pix else patches


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """MAE's loss: the squared error per patch (mean over its ``p * p * C`` values), averaged over
    the masked patches only. ``pred, target (B, N, P)``, ``mask (B, N)`` with 1 = masked."""
    per_patch = (pred - target).pow(2).mean(dim=-1)  # (B, N)
    return (per_patch * mask).sum() / mask.sum()
