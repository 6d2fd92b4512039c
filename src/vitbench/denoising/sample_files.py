"""Generated images on disk: ``samples.pt`` (uint8 images and their labels) and ``samples.png``
(a grid, one row per class), and the uint8 <-> [-1, 1] conversions the denoiser uses.
``vitbench-sample`` (the command) lives in :mod:`vitbench.denoising.sample`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor


def to_uint8(images: Tensor) -> Tensor:
    """Pixels in [-1, 1] ``(N, C, H, W)`` -> uint8 in [0, 255], clamped."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(images: Tensor) -> Tensor:
    """uint8 ``(N, C, H, W)`` -> float pixels in [-1, 1]."""
    return images.float() / 127.5 - 1


def class_rows(images: Tensor, labels: Tensor, per_class: int) -> Tensor:
    """Up to ``per_class`` images of each class in label order, padded with blanks to full rows:
    ``(K * per_class, C, H, W)`` for the K classes present."""
    rows = []
    for label in labels.unique(sorted=True):
        row = images[labels == label][:per_class]
        blank = torch.zeros((per_class - len(row), *images.shape[1:]), dtype=images.dtype)
        rows.append(torch.cat([row, blank]))
    return torch.cat(rows)


def save_samples(images: Tensor, labels: Tensor, folder: Path, per_class: int = 10) -> tuple[Path, Path]:
    """Write ``samples.pt`` (``{"images": uint8 (N, C, H, W), "labels": int64 (N,)}``, loadable with
    ``torch.load(weights_only=True)``) and ``samples.png`` (one row per class) into ``folder``."""
    from torchvision.utils import save_image

    folder.mkdir(parents=True, exist_ok=True)
    images, labels = images.cpu(), labels.cpu().long()
    pt, png = folder / "samples.pt", folder / "samples.png"
    torch.save({"images": images, "labels": labels}, pt)
    grid = class_rows(images, labels, per_class).float() / 255
    save_image(grid, png, nrow=per_class, padding=1, pad_value=0.5)
    return pt, png
