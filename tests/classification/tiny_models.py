"""Tiny models and data shared by the model tests (imported as a plain module by pytest's rootdir import mode)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from vitbench.classification import CNNModule, EfficientViTModule, SwinModule, ViTModule

NUM_CLASSES = 5

# The smallest arguments that still exercise every stage of each variant.
TINY = {
    "vit": (ViTModule, dict(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0)),
    "swin": (
        SwinModule,
        dict(img_size=16, patch_size=2, embed_dim=16, depths=(1, 1), num_heads=(1, 2), window_size=4),
    ),
    "efficientvit": (
        EfficientViTModule,
        dict(img_size=20, widths=(8, 16, 16, 32), depths=(1, 1, 1, 1), head_dim=8, head_widths=(32, 32)),
    ),
    "cnn": (CNNModule, dict(channels=(8, 16, 16, 32), layers=(1, 1, 1, 1))),
}


def tiny_model(name: str, **overrides):
    cls, kwargs = TINY[name]
    return cls(num_classes=NUM_CLASSES, in_chans=1, **{**kwargs, **overrides})


def image_size(name: str) -> int:
    return TINY[name][1].get("img_size", 16)


def class_images(n: int, img_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised images ``(n, 1, S, S)`` whose class sets a bright square's position, and labels ``(n,)``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % NUM_CLASSES
    x = 0.3 * torch.randn(n, 1, img_size, img_size, generator=g)
    side = img_size // NUM_CLASSES
    for i, label in enumerate(y.tolist()):
        x[i, 0, :, label * side : (label + 1) * side] += 2.0
    return x, y


def loader(x: torch.Tensor, y: torch.Tensor, batch_size: int = 8) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)
