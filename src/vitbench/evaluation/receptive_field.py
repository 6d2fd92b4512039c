"""The effective receptive field (Luo et al. 2016, "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks") of every stage of a classifier.

For each stage (:func:`~vitbench.evaluation.stages.stage_features`: the CNN's four stages, Swin's and
EfficientViT's stages, and for parity a ViT's blocks), the gradient of its centre unit, summed over
channels, with respect to the input pixels (in [0, 1], the run's normalisation inside); its absolute
value summed over the input channels and averaged over images. The centre unit is the one at the middle
of an odd feature map and the 2x2 in the middle of an even one (summed), so that it sits on the
image's centre. The figure is the radius around the image centre, as a fraction of the image side,
of the smallest disc holding 50 % (``erf50``) and 90 % (``erf90``) of the gradient's mass, pixel
centres counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image, ImageDraw
from torch import Tensor, nn

from vitbench.evaluation.stages import stage_features
from vitbench.run.drawing import heat_tile, labeled_grid

FRACTIONS = (50, 90)  # the gradient mass (%) whose radius is given


def centre_slice(n: int) -> slice:
    """The middle of ``n`` units: one when ``n`` is odd, two when it is even."""
    return slice((n - 1) // 2, n // 2 + 1)


def gradient_maps(net: nn.Module, to_input: Callable[[Tensor], Tensor], pixels: Tensor) -> dict[str, Tensor]:
    """Each stage's ``|d centre / d pixels|`` summed over input channels and images.

    Args:
        net: the network (eval mode), on the device of `pixels`.
        to_input: ``[0, 1]`` pixels ``(B, C, H, W)`` -> the network's normalised input, differentiable.
        pixels: float ``(B, C, H, W)`` in [0, 1].

    Returns:
        ``{stage name: (H, W)}`` float64 on the CPU, summed over the ``B`` images.
    """
    pixels = pixels.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        features = stage_features(net, to_input(pixels))
        maps = {}
        for i, (name, f) in enumerate(features.items()):  # f: (B, C, h, w)
            centre = f[:, :, centre_slice(f.shape[-2]), centre_slice(f.shape[-1])].sum()
            # Each image's centre depends on its own pixels only (eval mode), so one backward of the
            # sum gives every image's gradient.
            (grad,) = torch.autograd.grad(centre, pixels, retain_graph=i < len(features) - 1)
            maps[name] = grad.abs().sum((0, 1)).double().cpu()  # (H, W)
    return maps


def erf_radius(grad_map: Tensor, fraction: float) -> float:
    """The radius around the centre of ``grad_map (H, W)``, over the side ``W``, of the smallest disc
    (through pixel centres) holding `fraction` of its mass."""
    h, w = grad_map.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    distance = torch.hypot(xs - w / 2, ys - h / 2).flatten().double()  # (H * W,)
    order = distance.argsort(stable=True)
    mass = grad_map.flatten().double()[order].cumsum(0)
    if mass[-1] <= 0:
        return 0.0
    reached = int(torch.searchsorted(mass, fraction * mass[-1] * (1 - 1e-12)))  # first index at or above
    return float(distance[order][min(reached, len(order) - 1)]) / w


def receptive_fields(
    net: nn.Module, to_input: Callable[[Tensor], Tensor], batches: Sequence[Tensor]
) -> dict[str, Tensor]:
    """Each stage's mean gradient map ``(H, W)`` over the images of `batches` (float pixels in [0, 1])."""
    total: dict[str, Tensor] = {}
    for pixels in batches:
        for name, grad in gradient_maps(net, to_input, pixels).items():
            total[name] = total.get(name, 0) + grad
    count = sum(len(p) for p in batches)
    return {name: grad / count for name, grad in total.items()}


def erf_figures(maps: dict[str, Tensor]) -> dict[str, float]:
    """``erf50_stage{i}``, ``erf90_stage{i}`` of each stage and ``erf50_last``, ``erf90_last``."""
    found: dict[str, float] = {}
    for i, grad in enumerate(maps.values()):
        for p in FRACTIONS:
            found[f"erf{p}_stage{i}"] = erf_radius(grad, p / 100)
    last = len(maps) - 1
    found.update({f"erf{p}_last": found[f"erf{p}_stage{last}"] for p in FRACTIONS})
    return found


def erf_tile(grad_map: Tensor, radii: Sequence[float]) -> Image.Image:
    """A gradient map in inferno colours (stretched to its own range) with circles at each radius
    (fractions of the side): white at the first, cyan at the second."""
    h, w = grad_map.shape
    tile = heat_tile(torch.zeros(1, h, w, dtype=torch.uint8), grad_map, alpha=1.0)
    scale = tile.width / w
    draw = ImageDraw.Draw(tile)
    cx, cy = tile.width / 2, tile.height / 2
    for radius, colour in zip(radii, ("white", "cyan"), strict=False):
        r = radius * w * scale
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=1)
    return tile


def erf_picture(maps: dict[str, Tensor], found: dict[str, float], images: int) -> Image.Image:
    """Every stage's mean gradient map in a row, each captioned with its radii."""
    tiles, captions = [], []
    for i, (name, grad) in enumerate(maps.items()):
        radii = [found[f"erf{p}_stage{i}"] for p in FRACTIONS]
        tiles.append(erf_tile(grad, radii))
        captions.append([f"{i}: {name}", f"r50 {radii[0]:.2f}, r90 {radii[1]:.2f}"])
    title = (
        f"Effective receptive field of each stage's centre, |gradient| over {images} test images; "
        "circles: 50 % (white) and 90 % (cyan) of the mass, radius / image side"
    )
    return labeled_grid([tiles], [captions], title=title)
