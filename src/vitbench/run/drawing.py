"""PNG pictures drawn with PIL: grids of small images with captions, heat maps, a confusion
matrix. Not matplotlib figures: every classifier run draws these at its test end, and one
annotated matplotlib figure took ~1 s here on two busy cores, PIL ~0.05 s (matplotlib gives only
its colour maps and its DejaVu font)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from vitbench.run.files import atomic_path

# Small images are enlarged to about this many pixels a side, nearest-neighbour, to stay sharp.
TILE_PX = 96
GAP = 8
BAR = 14  # width of the confusion matrix's colour bar


@cache
def font(size: int = 12) -> ImageFont.FreeTypeFont:
    """DejaVu Sans from matplotlib's data (PIL's own default font has no arrow glyph)."""
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return ImageFont.truetype(str(path), size) if path.is_file() else ImageFont.load_default(size)


def to_display(x: Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> Tensor:
    """Normalized images ``(B, C, H, W)`` -> uint8 ``(B, C, H, W)`` on the CPU: the inverse of
    the datamodule's normalization, or each image stretched to [0, 255] without it."""
    x = x.detach().float().cpu()
    if mean is not None and std is not None:
        x = x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    else:
        low = x.amin(dim=(1, 2, 3), keepdim=True)
        x = (x - low) / (x.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-8)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def tile(image: Tensor) -> Image.Image:
    """uint8 ``(C, H, W)``, C = 1 or 3 -> an RGB PIL image enlarged to about TILE_PX a side."""
    scale = max(1, TILE_PX // max(image.shape[1:]))
    rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]
    return Image.fromarray(rgb.permute(1, 2, 0).numpy()).resize(
        (rgb.shape[2] * scale, rgb.shape[1] * scale), Image.Resampling.NEAREST
    )


def heat_tile(image: Tensor, heat: Tensor, alpha: float = 0.55) -> Image.Image:
    """``image`` uint8 ``(C, H, W)`` under a heat map ``(h, w)`` (any scale: stretched from its own
    minimum to its own maximum), upsampled bilinearly, in matplotlib's inferno colours."""
    base = tile(image)
    heat = heat.float().cpu()[None, None]
    heat = F.interpolate(heat, size=(base.height, base.width), mode="bilinear", align_corners=False)[0, 0]
    heat = (heat - heat.min()) / (heat.max() - heat.min()).clamp_min(1e-12)  # (H', W') in [0, 1]
    colors = matplotlib.colormaps["inferno"](heat.numpy(), bytes=True)[..., :3]  # (H', W', 3) uint8
    return Image.blend(base, Image.fromarray(colors), alpha)


def text_width(text: str, size: int = 12) -> int:
    return int(font(size).getlength(text))


def labeled_grid(
    tiles: Sequence[Sequence[Image.Image]],
    captions: Sequence[Sequence[Sequence[str]]] | None = None,
    row_titles: Sequence[str] | None = None,
    title: str = "",
) -> Image.Image:
    """Rows of equal-sized tiles, each with caption lines above it, a title over the grid and a
    title left of each row, on white.

    Args:
        tiles: ``tiles[r][c]``, all the size of ``tiles[0][0]``.
        captions: ``captions[r][c]``: lines written above tile ``(r, c)``.
        row_titles: one per row.
    """
    size, line = 12, 15
    tile_w, tile_h = tiles[0][0].size
    captions = captions or [[[] for _ in row] for row in tiles]
    lines = [max((len(c) for c in row), default=0) for row in captions]
    widest = max((text_width(s, size) for row in captions for c in row for s in c), default=0)
    cell_w = max(tile_w, widest) + GAP
    left = max((text_width(t, size) for t in row_titles or []), default=-GAP) + GAP
    top = GAP + (line + GAP if title else 0)
    ncol = max(len(row) for row in tiles)
    width = max(GAP + left + ncol * cell_w, text_width(title, size) + 2 * GAP)
    height = top + sum(n * line + tile_h + GAP for n in lines) + GAP
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((GAP, GAP), title, fill="black", font=font(size))
    y = top
    for r, row in enumerate(tiles):
        if row_titles:
            draw.text(
                (GAP, y + lines[r] * line + tile_h // 2),
                row_titles[r],
                fill="black",
                font=font(size),
                anchor="lm",
            )
        for c, image in enumerate(row):
            x = GAP + left + c * cell_w
            for k, text in enumerate(captions[r][c]):
                # Centred over the cell, as the tile is: a caption wider than the tile stays inside.
                draw.text(
                    (x + (cell_w - GAP) // 2, y + k * line), text, fill="black", font=font(size), anchor="ma"
                )
            canvas.paste(image, (x + (cell_w - GAP - tile_w) // 2, y + lines[r] * line))
        y += lines[r] * line + tile_h + GAP
    return canvas


def vertical_text(text: str, size: int = 12) -> Image.Image:
    """``text`` in black on a transparent strip, turned to read upwards."""
    strip = Image.new("RGBA", (max(1, text_width(text, size)), size + 4), (255, 255, 255, 0))
    ImageDraw.Draw(strip).text((0, 0), text, fill="black", font=font(size))
    return strip.rotate(90, expand=True)


def confusion_picture(matrix: Tensor, classes: Sequence[str]) -> Image.Image:
    """A confusion matrix ``(K, K)`` of counts (rows: true class, columns: predicted): each cell
    coloured by its share of the true class, so rare classes read as well as common ones, with
    its count written in it (up to 30 classes), and a colour bar."""
    k, size = len(classes), 12
    counts = matrix.cpu().long()
    shares = counts.float() / counts.sum(1, keepdim=True).clamp_min(1)  # (K, K), rows sum to 1
    cell = 40 if k <= 30 else max(6, 900 // k)
    names = [name if k <= 30 else "" for name in classes]  # 100 names do not fit beside 6 px cells
    left = GAP + size + 4 + GAP + max(text_width(n, size) for n in names) + GAP
    top = GAP + 2 * 15 + GAP
    side = k * cell
    bottom = GAP + max(text_width(n, size) for n in names) + GAP + size + 4 + GAP
    bar_x = left + side + 2 * GAP
    bar_text = bar_x + BAR + 4  # where the colour bar's ticks and legend go
    legend_x = bar_text + text_width("1.0", size) + 4
    subtitle = "(counts; colour: fraction of each true class)"
    width = max(legend_x + size + 4 + GAP, text_width(subtitle, size) + 2 * GAP)
    canvas = Image.new("RGB", (width, top + side + bottom), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((GAP, GAP), f"Confusion matrix, {int(counts.sum())} test images", fill="black", font=font(size))
    draw.text((GAP, GAP + 15), subtitle, fill="black", font=font(size))
    colors = matplotlib.colormaps["Blues"](shares.numpy(), bytes=True)[..., :3]  # (K, K, 3) uint8
    cells = Image.fromarray(colors).resize((side, side), Image.Resampling.NEAREST)
    canvas.paste(cells, (left, top))
    for i in range(k):
        centre = top + i * cell + cell // 2
        draw.text((left - GAP, centre), names[i], fill="black", font=font(size), anchor="rm")
        label = vertical_text(names[i], size) if names[i] else None
        if label is not None:
            canvas.paste(label, (left + i * cell + (cell - label.width) // 2, top + side + GAP), label)
        for j in range(k if k <= 30 else 0):
            ink = "white" if shares[i, j] > 0.5 else "black"
            xy = (left + j * cell + cell // 2, centre)
            draw.text(xy, str(int(counts[i, j])), fill=ink, font=font(size - 1), anchor="mm")
    axis = vertical_text("true class", size)
    canvas.paste(axis, (GAP, top + (side - axis.height) // 2), axis)
    draw.text(
        (left + side // 2, top + side + bottom - GAP),
        "predicted class",
        fill="black",
        font=font(size),
        anchor="md",
    )
    # The colour bar: 1 at the top, 0 at the bottom.
    ramp = torch.linspace(1, 0, side).view(-1, 1).expand(side, BAR).contiguous()  # (side, BAR)
    canvas.paste(
        Image.fromarray(matplotlib.colormaps["Blues"](ramp.numpy(), bytes=True)[..., :3]), (bar_x, top)
    )
    draw.text((bar_text, top), "1.0", fill="black", font=font(size), anchor="la")
    draw.text((bar_text, top + side), "0.0", fill="black", font=font(size), anchor="ld")
    legend = vertical_text("fraction of the true class", size)
    if legend.height <= side:  # a matrix of a few classes is shorter than the legend: the subtitle says it
        canvas.paste(legend, (legend_x, top + (side - legend.height) // 2), legend)
    return canvas


def save_png(picture: Image.Image, path: Path) -> Path:
    """Write ``picture`` to ``path`` through a temporary file, so no half PNG is ever there."""
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
    return path
