"""Learnable random images made in memory, for tests and benchmarks: no files needed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vitbench.data.sources.base import Source


def make_synthetic(
    num_images: int, num_classes: int, img_size: int, in_chans: int, seed: int = 0, train: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic, learnable images: a smooth per-class template plus per-image noise.

    The templates depend on `seed` only, so the train and test splits of one seed share
    them and differ in their noise; a tiny model separates the classes in a few steps.

    Returns:
        images: uint8 `(num_images, in_chans, img_size, img_size)`; labels: int64 `(num_images,)`.
    """
    g = torch.Generator().manual_seed(seed)
    # 4x4 random patterns upsampled: low frequency, so patching or cropping keeps them recognisable.
    coarse = torch.randn(num_classes, in_chans, 4, 4, generator=g)
    templates = F.interpolate(coarse, size=(img_size, img_size), mode="bilinear", align_corners=False)
    g.manual_seed(seed * 2 + (1 if train else 2))  # the split's noise, distinct from the templates
    labels = torch.arange(num_images) % num_classes  # balanced classes
    labels = labels[torch.randperm(num_images, generator=g)]
    noise = torch.randn(num_images, in_chans, img_size, img_size, generator=g)
    x = 128 + 50 * templates[labels] + 25 * noise  # (N, C, H, W)
    return x.round().clamp(0, 255).to(torch.uint8), labels


@dataclass
class Synthetic(Source):
    """:func:`make_synthetic` images at ``data.img_size`` with ``data.in_chans`` channels and
    ``data.num_classes`` classes (the source has no classes of its own): ``num_images`` in the train
    split, a quarter of that in the test split.

    Args:
        num_images: images of the train split (>= 4).
    """

    num_images: int = 512

    def __post_init__(self) -> None:
        if self.num_images < 4:
            raise ValueError(f"data.source.num_images must be >= 4, got {self.num_images}.")

    @property
    def name(self) -> str:
        return "synthetic"

    def read(
        self, train: bool, img_size: int, in_chans: int, num_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.num_images if train else max(1, self.num_images // 4)
        return make_synthetic(n, num_classes, img_size, in_chans, seed=0, train=train)
