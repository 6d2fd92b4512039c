"""Geometric corruptions in torch: affine maps about the image centre, zoom blur and elastic warps.

Same contract as ``corruption_ops``: float images ``x: (N, C, H, W)`` in [0, 1], a generator, one
severity's constants; float images of the same shape out. Every warp samples the input bilinearly
(scikit-image's ``warp`` and scipy's ``map_coordinates`` with order 1) at a point given in pixel
coordinates (x to the right, y down, pixel centres at integers), with zeros outside the image unless
said otherwise (the references' ``mode="constant"``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vitbench.evaluation.corruption_ops import blur_matrix, separable


def sample(x: Tensor, points: Tensor, padding: str = "zeros") -> Tensor:
    """Bilinear samples of ``x`` at ``points: (N, H, W, 2)``, pixel (x, y) coordinates; (N, C, H, W)."""
    height, width = x.shape[-2:]
    scale = torch.tensor([2 / (width - 1), 2 / (height - 1)], dtype=points.dtype)
    grid = points * scale - 1  # align_corners=True: -1 and 1 are the centres of the border pixels
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode=padding, align_corners=True)


def _pixel_grid(n: int, height: int, width: int) -> Tensor:
    """The (x, y) coordinates of every output pixel, (N, H, W, 2)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    return torch.stack([xs, ys], dim=-1).expand(n, height, width, 2)


def _about_centre(x: Tensor, linear: Tensor) -> Tensor:
    """Sample ``x`` at ``linear @ (p - c) + c`` for each output pixel p, c the image centre.

    ``linear: (N, 2, 2)`` is the inverse map (output to input) in pixel units, as scikit-image's
    ``warp(x, inverse_map=AffineTransform(...))`` with the translation that keeps the centre fixed.
    With align_corners=True the centre is 0 in grid units, so only the axes' scales enter.
    """
    height, width = x.shape[-2:]
    to_grid = torch.tensor([2 / (width - 1), 2 / (height - 1)], dtype=torch.float64)
    theta = to_grid[:, None] * linear / to_grid[None, :]  # (N, 2, 2) in grid units
    theta = torch.cat([theta, torch.zeros(len(linear), 2, 1, dtype=torch.float64)], dim=2).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _random_sign(n: int, generator: torch.Generator) -> Tensor:
    """+1 or -1 per image, with even odds (the references' random direction), float64 (N,)."""
    return torch.randint(0, 2, (n,), generator=generator).double() * 2 - 1


def shear(x: Tensor, generator: torch.Generator, angle: float) -> Tensor:
    """Shear by ``angle`` rad with a random sign: scikit-image's ``AffineTransform(shear=a)``,
    matrix [[1, -sin a], [0, cos a]], about the centre."""
    a = angle * _random_sign(x.shape[0], generator)
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    linear = torch.stack([torch.stack([one, -torch.sin(a)], -1), torch.stack([zero, torch.cos(a)], -1)], -2)
    return _about_centre(x, linear)


def rotate(x: Tensor, generator: torch.Generator, angle: float) -> Tensor:
    """Rotate by ``angle`` rad with a random sign about the centre."""
    a = angle * _random_sign(x.shape[0], generator)
    cos, sin = torch.cos(a), torch.sin(a)
    linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    return _about_centre(x, linear)


def zoom_matrix(n: int, factor: float) -> Tensor:
    """The (n, n) matrix of a bilinear zoom by ``factor`` about the centre along one axis.

    Output pixel i reads the input at ``c + (i - c) / factor``; neighbours outside the image count
    as zero (``mode="constant"``). Zooms are separable, so ``M @ x @ M.T`` zooms a whole batch with
    two small matrix products, far faster than a sampling grid on a CPU.
    """
    centre = (n - 1) / 2
    position = centre + (torch.arange(n, dtype=torch.float64) - centre) / factor
    low = torch.floor(position)
    frac = position - low
    matrix = torch.zeros(n, n + 1, dtype=torch.float64)  # a spare column takes the weight beyond n - 1
    for neighbour, weight in ((low, 1 - frac), (low + 1, frac)):
        inside = (neighbour >= 0) & (neighbour <= n - 1)
        column = torch.where(inside, neighbour, torch.full_like(neighbour, n)).long()
        matrix.scatter_add_(1, column[:, None], (weight * inside)[:, None])
    return matrix[:, :n].float()


def scale(x: Tensor, generator: torch.Generator, factor: float) -> Tensor:
    """Sample at ``factor`` times the distance from the centre: factor > 1 shrinks the content."""
    del generator  # deterministic
    rows, cols = zoom_matrix(x.shape[-2], 1 / factor), zoom_matrix(x.shape[-1], 1 / factor)
    return separable(x, rows, cols).clamp(0, 1)


def translate(x: Tensor, generator: torch.Generator, shift: float) -> Tensor:
    """Shift by ``shift`` px along each axis, each with a random sign (content moves by -shift)."""
    n, _, height, width = x.shape
    offset = shift * torch.stack([_random_sign(n, generator), _random_sign(n, generator)], dim=-1)
    return sample(x, _pixel_grid(n, height, width) + offset[:, None, None, :])


def zoom_factors(stop: float, step: float) -> list[float]:
    """The references' ``np.arange(1, stop, step)``, float quirks included (it can reach ``stop``)."""
    return [float(z) for z in np.arange(1, stop, step)]


def zoom_blur(x: Tensor, generator: torch.Generator, stop: float, step: float) -> Tensor:
    """The mean of the image and its zooms by each factor of :func:`zoom_factors` about the centre.

    The references crop the centre, zoom it with scipy and trim it (``clipped_zoom``); a bilinear
    zoom about the centre differs from that by under a pixel of alignment.
    """
    del generator  # deterministic
    height, width = x.shape[-2:]
    total = x.clone()
    factors = zoom_factors(stop, step)
    for factor in factors:
        total += separable(x, zoom_matrix(height, factor), zoom_matrix(width, factor))
    return (total / (len(factors) + 1)).clamp(0, 1)


def elastic_transform(
    x: Tensor, generator: torch.Generator, alpha: float, sigma: float, jitter: float, reflect: float
) -> Tensor:
    """The references' elastic warp (after Simard et al. 2003): a random affine map, then a smooth field.

    The affine map moves three points at the centre +- a third of the side by uniform(-jitter, jitter)
    px; the field is uniform(-1, 1) noise per axis, Gaussian-blurred by ``sigma`` (truncate 3,
    reflected edges) and times ``alpha`` px. Output pixel p reads the input at ``M^-1 (p + d(p))``,
    one bilinear sample where the references resample twice (OpenCV's warpAffine, then scipy).
    Borders: zeros for MNIST-C, reflected for CIFAR-10-C (``reflect`` 0 or 1; reflect-101 here).
    """
    n, _, height, width = x.shape
    centre, third = float(min(height, width) // 2), float(min(height, width) // 3)
    src = torch.tensor(
        [
            [centre + third, centre + third],
            [centre + third, centre - third],
            [centre - third, centre - third],
        ],
        dtype=torch.float64,
    )
    dst = src + (torch.rand(n, 3, 2, generator=generator, dtype=torch.float64) * 2 - 1) * jitter
    # The forward map M takes src to dst; warpAffine reads the input at M^-1(p).
    homogeneous = torch.cat([src, torch.ones(3, 1, dtype=torch.float64)], dim=1)  # (3, 3)
    forward = torch.linalg.solve(homogeneous, dst).transpose(1, 2)  # (N, 2, 3)
    full = torch.cat([forward, torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64).expand(n, 1, 3)], dim=1)
    inverse = torch.linalg.inv(full)[:, :2]  # (N, 2, 3)
    noise = torch.rand(n, 2, height, width, generator=generator, dtype=torch.float64) * 2 - 1
    points = _pixel_grid(n, height, width)
    if alpha > 0 and sigma > 0:
        rows = blur_matrix(height, sigma, 3.0, "reflect").double()
        cols = blur_matrix(width, sigma, 3.0, "reflect").double()
        field = alpha * separable(noise, rows, cols)  # (N, 2, H, W): dx, dy
        points = points + field.permute(0, 2, 3, 1)
    points = torch.einsum("nij,nhwj->nhwi", inverse[:, :, :2], points) + inverse[:, None, None, :, 2]
    return sample(x, points, padding="reflection" if reflect else "zeros").clamp(0, 1)
