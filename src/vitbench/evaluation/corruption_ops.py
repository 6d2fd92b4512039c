"""Pixel-wise corruptions in torch: noise, blur and photometric changes of a batch of images.

Each function takes float images ``x: (N, C, H, W)`` in [0, 1], a ``torch.Generator`` for its random
draws, and the constants of one severity (``corruption_constants``), and returns float images of the
same shape in [0, 1]. They follow the reference functions of MNIST-C's ``corruptions.py`` and
``make_cifar_c.py`` (which are identical in form and differ in constants); departures are noted on
each function. The geometric ones are in ``corruption_geometry``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import Tensor


def gaussian_noise(x: Tensor, generator: torch.Generator, sigma: float) -> Tensor:
    """Add N(0, sigma^2) to every pixel and channel."""
    return (x + sigma * torch.randn(x.shape, generator=generator)).clamp(0, 1)


def shot_noise(x: Tensor, generator: torch.Generator, photons: float) -> Tensor:
    """Poisson noise: ``Poisson(x * photons) / photons`` (fewer photons, more noise)."""
    return (torch.poisson(x * photons, generator=generator) / photons).clamp(0, 1)


def impulse_noise(x: Tensor, generator: torch.Generator, amount: float) -> Tensor:
    """Salt and pepper as scikit-image's ``random_noise(mode="s&p")``: each element is flipped with
    probability ``amount``, to 1 or 0 with even odds (channels independently)."""
    flipped = torch.rand(x.shape, generator=generator) <= amount
    salt = torch.rand(x.shape, generator=generator) <= 0.5
    return torch.where(flipped, salt.to(x.dtype), x)


def blur_matrix(n: int, sigma: float, truncate: float, mode: str) -> Tensor:
    """The (n, n) matrix of a 1-D Gaussian filter as scikit-image/scipy apply it, borders included.

    Row i holds the weights of output pixel i over the input pixels, the kernel cut at
    ``truncate * sigma`` and folded back at the borders by ``mode`` ("nearest": the edge pixel
    repeats; "reflect": scipy's d c b a | a b c d). A matrix, not a padded convolution, because the
    reference kernels can be wider than the image (sigma 6 at 28 px, MNIST-C's elastic sigma 19.6),
    which padding cannot fold.
    """
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    index = torch.arange(n)[:, None] + offsets.long()[None, :]  # (n, 2r + 1) input index per tap
    if mode == "nearest":
        index = index.clamp(0, n - 1)
    else:
        index = index % (2 * n)
        index = torch.where(index >= n, 2 * n - 1 - index, index)
    matrix = torch.zeros(n, n, dtype=torch.float64)
    matrix.scatter_add_(1, index, weights.expand(n, -1).contiguous())
    return matrix.float()


def separable(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``rows @ x @ cols.T`` for ``x: (N, C, H, W)``, ``rows: (H, H)``, ``cols: (W, W)``, as two
    large matrix products over the whole batch (a broadcast ``rows @ x`` runs N C small ones)."""
    out = x @ cols.T.to(x.dtype)
    return (out.transpose(-2, -1) @ rows.T.to(x.dtype)).transpose(-2, -1)


def gaussian_blur(x: Tensor, generator: torch.Generator, sigma: float) -> Tensor:
    """scikit-image's ``gaussian(x, sigma)`` (truncate 4, edges repeated), separably in H and W."""
    del generator  # deterministic
    rows = blur_matrix(x.shape[-2], sigma, 4.0, "nearest")
    cols = blur_matrix(x.shape[-1], sigma, 4.0, "nearest")
    return separable(x, rows, cols).clamp(0, 1)


def _filter(x: Tensor, kernel: Tensor) -> Tensor:
    """Convolve every channel with one square ``kernel`` (K, K), borders reflected as OpenCV's
    ``filter2D`` (reflect-101), or repeated when the kernel is wider than the image."""
    half = kernel.shape[-1] // 2
    mode = "reflect" if half < min(x.shape[-2:]) else "replicate"
    channels = x.shape[1]
    padded = F.pad(x, (half, half, half, half), mode=mode)
    weight = kernel.to(x.dtype).expand(channels, 1, -1, -1)
    return F.conv2d(padded, weight, groups=channels)


def disk(radius: float, alias_sigma: float) -> Tensor:
    """The references' defocus kernel: a normalised disk of ``radius`` px, anti-aliased by a 3x3
    Gaussian (5x5 beyond radius 8) of ``alias_sigma``. Their 17x17 canvas is cut to the disk plus
    the anti-aliasing's reach, which leaves the kernel unchanged."""
    size = 3 if radius <= 8 else 5
    half = math.ceil(radius) + size // 2
    coords = torch.arange(-half, half + 1, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    aliased = ((xx**2 + yy**2) <= radius**2).float()
    aliased /= aliased.sum()
    return TF.gaussian_blur(aliased[None], [size, size], [alias_sigma, alias_sigma])[0]


def defocus_blur(x: Tensor, generator: torch.Generator, radius: float, alias_sigma: float) -> Tensor:
    """Convolution with :func:`disk` (a lens out of focus)."""
    del generator  # deterministic
    return _filter(x, disk(radius, alias_sigma)).clamp(0, 1)


def motion_blur(x: Tensor, generator: torch.Generator, radius: float, sigma: float) -> Tensor:
    """ImageMagick's ``MotionBlurImage(radius, sigma, angle)``, the angle uniform in [-45, 45] degrees
    per image: a one-sided line of ``2 ceil(radius) + 1`` taps along the angle, tap i at the rounded
    offset i (cos a, sin a) with weight exp(-i^2 / 2 sigma^2), normalised; edges repeated.
    """
    n = x.shape[0]
    width = 2 * math.ceil(radius) + 1
    taps = torch.arange(width, dtype=torch.float64)
    weights = torch.exp(-(taps**2) / (2 * sigma**2))
    weights = (weights / weights.sum()).to(x.dtype)
    angle = torch.deg2rad(torch.rand(n, generator=generator, dtype=torch.float64) * 90 - 45)
    # ImageMagick rounds each offset with ceil(v - 0.5).
    dx = torch.ceil(taps[None] * torch.cos(angle)[:, None] - 0.5).long()  # (N, width)
    dy = torch.ceil(taps[None] * torch.sin(angle)[:, None] - 0.5).long()
    channels, height, padded_width = x.shape[1], x.shape[-2], x.shape[-1] + 2 * width
    padded = F.pad(x, (width, width, width, width), mode="replicate").flatten(2)  # (N, C, H' W')
    rows = torch.arange(height)[:, None] + width
    cols = torch.arange(x.shape[-1])[None, :] + width
    base = (rows * padded_width + cols).flatten()  # (H W,) flat index of each pixel in the padding
    out = torch.zeros(n, channels, base.numel(), dtype=x.dtype)
    for i in range(width):
        index = base[None, :] + (dy[:, i] * padded_width + dx[:, i])[:, None]  # (N, H W)
        out += weights[i] * padded.gather(2, index[:, None, :].expand(n, channels, -1))
    return out.view_as(x).clamp(0, 1)


def contrast(x: Tensor, generator: torch.Generator, factor: float) -> Tensor:
    """Scale each image's deviation from its own mean (per channel) by ``factor``."""
    del generator  # deterministic
    mean = x.mean(dim=(-2, -1), keepdim=True)
    return ((x - mean) * factor + mean).clamp(0, 1)


def brightness(x: Tensor, generator: torch.Generator, shift: float) -> Tensor:
    """Add ``shift`` to the HSV value (the largest channel), keeping hue and saturation: the channels
    scale by V'/V (black becomes grey V'). On grey images (the references go through RGB and back)
    this is ``clip(x + shift)``."""
    del generator  # deterministic
    value = x.amax(dim=1, keepdim=True)
    lifted = (value + shift).clamp(max=1)
    return torch.where(value > 0, x * lifted / value.clamp(min=1e-12), lifted.expand_as(x))


def saturate(x: Tensor, generator: torch.Generator, factor: float, shift: float) -> Tensor:
    """HSV saturation ``S' = clip(S * factor + shift)`` at the same hue and value (RGB images).

    With V and the hue fixed every channel keeps its distance to V in proportion:
    ``c' = V - (V - c) S'/S``. A grey pixel (S = 0) has hue 0 in scikit-image's conversion, so it
    turns red by ``shift``: (V, V (1 - S'), V (1 - S')), as in the reference.
    """
    del generator  # deterministic
    value = x.amax(dim=1, keepdim=True)
    chroma = value - x.amin(dim=1, keepdim=True)
    sat = torch.where(value > 0, chroma / value.clamp(min=1e-12), torch.zeros_like(value))
    new_sat = (sat * factor + shift).clamp(0, 1)
    coloured = value - (value - x) * new_sat / sat.clamp(min=1e-12)
    grey = torch.cat([value, value * (1 - new_sat), value * (1 - new_sat)], dim=1)
    return torch.where(sat > 0, coloured, grey).clamp(0, 1)


def jpeg_compression(x: Tensor, generator: torch.Generator, quality: float) -> Tensor:
    """JPEG encode and decode at ``quality`` (torchvision's libjpeg, where the references use PIL's)."""
    del generator  # deterministic
    encoded = TF.jpeg(to_uint8(x), int(quality))
    return encoded.float() / 255


def pixelate(x: Tensor, generator: torch.Generator, fraction: float) -> Tensor:
    """Down to ``int(side * fraction)`` px by box averaging and back up by the nearest pixel (PIL's
    BOX both ways in the references; torch's "area" averages whole-pixel bins where PIL weighs
    partial pixels at non-integer ratios)."""
    del generator  # deterministic
    height, width = x.shape[-2:]
    small = F.interpolate(x, size=(int(height * fraction), int(width * fraction)), mode="area")
    return F.interpolate(small, size=(height, width), mode="nearest-exact").clamp(0, 1)


def to_uint8(x: Tensor) -> Tensor:
    """Float images in [0, 1] to uint8 in [0, 255], rounded (the references truncate their float32
    output when they save it; rounding keeps the identity exact)."""
    return (x * 255).round().clamp(0, 255).to(torch.uint8)
