"""The locality part of the profile: how far each block attends, and how far each stage sees.

Dosovitskiy et al. 2021 (Fig. 7) and Raghu et al. 2021, "Do Vision Transformers See Like Convolutional
Neural Networks?". On a fixed subset of the test split (:data:`IMAGES` images drawn with the profile's
seed, the same for every run of a dataset): the mean attention distance of every block and head of a
ViT, a DeiT and (within its windows) a Swin, beside uniform attention's value
(:mod:`~vitbench.evaluation.attention_distance`); and the effective receptive field of every stage of
every classifier, the ViT's blocks included for parity, on the first :data:`ERF_IMAGES` of them
(:mod:`~vitbench.evaluation.receptive_field`). Distances and radii are fractions of the image side.
Pictures: ``attention_distance.png`` (attention models) and ``receptive_field.png``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from vitbench.data.augment import normalize
from vitbench.evaluation.attention_distance import BlockDistance, attention_distances
from vitbench.evaluation.receptive_field import erf_figures, erf_picture, receptive_fields
from vitbench.run.drawing import GAP, font, text_width

if TYPE_CHECKING:
    from vitbench.evaluation.context import Context

IMAGES = 500  # test images the attention distance is averaged over
ERF_IMAGES = 100  # the first of them, for the receptive fields (a backward pass a stage)
BATCH = 100
PLOT_W, PLOT_H = 360, 220  # the distance plot's area, pixels


def fixed_subset(count: int, size: int, seed: int) -> Tensor:
    """`size` indices of ``range(count)`` (all when fewer), drawn with `seed`, sorted: the same images
    for every run of a dataset."""
    chosen = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:size]
    return chosen.sort().values


def distance_figures(blocks: list[BlockDistance]) -> dict[str, float]:
    """``attn_dist_block{i}`` (mean over heads) and ``_head{h}``, first and last, uniform attention's
    value at the first block, and the mean prefix mass over blocks and heads."""
    found: dict[str, float] = {}
    for i, block in enumerate(blocks):
        found[f"attn_dist_block{i}"] = float(block.heads.mean())
        found.update({f"attn_dist_block{i}_head{h}": float(d) for h, d in enumerate(block.heads)})
    found["attn_dist_first"] = found["attn_dist_block0"]
    found["attn_dist_last"] = found[f"attn_dist_block{len(blocks) - 1}"]
    found["attn_dist_uniform"] = blocks[0].uniform
    found["attn_prefix_mass"] = float(torch.stack([b.prefix_mass.mean() for b in blocks]).mean())
    return found


def dashed(
    draw: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float], dash: float = 5
) -> None:
    """A grey dashed segment from `a` to `b`."""
    length = max(((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5, 1e-9)
    steps = int(length // dash)
    for k in range(0, steps + 1, 2):
        t0, t1 = k * dash / length, min((k + 1) * dash / length, 1.0)
        p0 = (a[0] + t0 * (b[0] - a[0]), a[1] + t0 * (b[1] - a[1]))
        p1 = (a[0] + t1 * (b[0] - a[0]), a[1] + t1 * (b[1] - a[1]))
        draw.line([p0, p1], fill=(120, 120, 120), width=2)


def distance_picture(blocks: list[BlockDistance], title: str) -> Image.Image:
    """Attention distance against depth: each head a dot, their mean a line, uniform attention dashed."""
    left, top = 48, GAP + 36
    legend = "dots: heads; line: their mean; dashed: uniform attention (fraction of the image side)"
    width = max(left + PLOT_W + 2 * GAP, text_width(title, 12) + 2 * GAP, text_width(legend, 11) + 2 * GAP)
    canvas = Image.new("RGB", (width, top + PLOT_H + 40), "white")
    draw = ImageDraw.Draw(canvas)
    values = [float(v) for b in blocks for v in b.heads] + [b.uniform for b in blocks]
    high = max(0.1, float(torch.tensor(values).max()) * 1.1)
    n = len(blocks)

    def xy(i: float, value: float) -> tuple[float, float]:
        return left + (i + 0.5) * PLOT_W / n, top + (1 - value / high) * PLOT_H

    for i in range(n - 1):
        dashed(draw, xy(i, blocks[i].uniform), xy(i + 1, blocks[i + 1].uniform))
    if n == 1:
        dashed(draw, xy(-0.4, blocks[0].uniform), xy(0.4, blocks[0].uniform))
    means = [xy(i, float(b.heads.mean())) for i, b in enumerate(blocks)]
    if n > 1:
        draw.line(means, fill=(30, 30, 30), width=2)
    for i, block in enumerate(blocks):
        for d in block.heads:
            x, y = xy(i, float(d))
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(70, 110, 190))
        x, y = means[i]
        draw.rectangle([x - 2, y - 2, x + 2, y + 2], fill=(30, 30, 30))
        draw.text((x, top + PLOT_H + 4), str(i), fill="black", font=font(11), anchor="ma")
    draw.rectangle([left, top, left + PLOT_W, top + PLOT_H], outline="black")
    for tick in (0.0, high / 2, high):
        draw.text((left - 4, xy(0, tick)[1]), f"{tick:.2f}", fill="black", font=font(11), anchor="rm")
    draw.text((left + PLOT_W / 2, top + PLOT_H + 36), "block", fill="black", font=font(11), anchor="md")
    draw.text((GAP, GAP), title, fill="black", font=font(12))
    draw.text((GAP, GAP + 16), legend, fill="black", font=font(11))
    return canvas


def locality(context: Context) -> dict[str, float]:
    """The locality part: ``attn_dist_*`` and ``attn_prefix_mass`` for attention models, ``erf*`` for
    every classifier; ``pictures/attention_distance.png`` and ``pictures/receptive_field.png``."""
    images, _ = context.test_split()  # uint8 (N, C, H, W)
    images = images[fixed_subset(len(images), IMAGES, context.seed)]
    data, net = context.classifier.data, context.model.net.to(context.device).eval()
    mean, std, size = data["mean"], data["std"], data.get("img_size")
    batches = images.to(context.device).split(BATCH)  # uint8 (<= BATCH, C, H, W) each
    found: dict[str, float] = {}
    blocks = attention_distances(net, [normalize(x, mean, std, size) for x in batches])
    if blocks is not None:
        found.update(distance_figures(blocks))
        kind = type(net).__name__
        within = ", within its windows" if kind.startswith("Swin") else ""
        title = f"Mean attention distance of {kind}{within}, {len(images)} test images"
        context.picture("attention_distance", distance_picture(blocks, title))
    erf_batches = (images[:ERF_IMAGES].to(context.device).float() / 255).split(BATCH)  # [0, 1] pixels
    maps = receptive_fields(net, lambda pixels: normalize(pixels * 255.0, mean, std, size), erf_batches)
    erf = erf_figures(maps)
    found.update(erf)
    context.picture("receptive_field", erf_picture(maps, erf, sum(len(x) for x in erf_batches)))
    return found
