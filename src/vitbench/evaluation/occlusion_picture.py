"""The occlusion part's picture, drawn with PIL: accuracy against the fraction of cells dropped (one
curve per grid and fill, a band of ± one std over the repeats), the shuffled accuracies beside it, and
one test image under each treatment below."""

from __future__ import annotations

from PIL import Image, ImageDraw
from torch import Tensor

from vitbench.classification.task import OCCLUSION_FILLS, OCCLUSION_GRIDS, OCCLUSION_PERCENTS
from vitbench.run.drawing import GAP, font, labeled_grid, text_width, tile, vertical_text

WIDTH, HEIGHT = 360, 240  # the plot area, pixels
LEFT, BOTTOM = 52, 40  # room for the y and x axes' ticks and labels
# matplotlib's tab10 blue and orange for the grids; the mean fill a lighter shade of its grid's colour.
COLORS = {
    ("aligned", "zero"): (31, 119, 180),
    ("aligned", "mean"): (120, 180, 225),
    ("misaligned", "zero"): (230, 110, 10),
    ("misaligned", "mean"): (250, 185, 110),
}
FILL_NAMES = {"zero": "black", "mean": "data mean"}


def curves_panel(found: dict[str, float], num_classes: int) -> Image.Image:
    """Accuracy (%) against cells dropped (%): four curves with their ± std bands, chance dashed grey,
    a legend on the right with the shuffled accuracies."""
    legend_x = LEFT + WIDTH + 2 * GAP
    lines = [f"{grid}, {FILL_NAMES[fill]}" for grid in OCCLUSION_GRIDS for fill in OCCLUSION_FILLS]
    shuffled = [
        f"{grid}: {100 * found[f'shuffle_acc_{grid}']:.1f} ± {100 * found[f'shuffle_acc_{grid}_std']:.1f} %"
        for grid in OCCLUSION_GRIDS
    ]
    width = legend_x + 24 + max(text_width(t, 11) for t in [*lines, *shuffled]) + GAP
    canvas = Image.new("RGB", (width, GAP + HEIGHT + BOTTOM), "white")
    bands = Image.new("RGBA", canvas.size, (0, 0, 0, 0))  # translucent: overlapping bands stay visible
    draw, draw_band = ImageDraw.Draw(canvas), ImageDraw.Draw(bands)
    top, last = GAP, OCCLUSION_PERCENTS[-1]

    def xy(percent: float, acc: float) -> tuple[float, float]:  # (% dropped, accuracy in [0, 1]) -> pixels
        return LEFT + percent / last * WIDTH, top + (1 - acc) * HEIGHT

    for (grid, fill), color in COLORS.items():
        key = f"occlusion_acc_{grid}_{fill}"
        mean = [found[f"{key}_{p}"] for p in OCCLUSION_PERCENTS]
        spread = [found[f"{key}_{p}_std"] for p in OCCLUSION_PERCENTS]
        upper = [xy(p, min(1.0, m + s)) for p, m, s in zip(OCCLUSION_PERCENTS, mean, spread, strict=True)]
        lower = [xy(p, max(0.0, m - s)) for p, m, s in zip(OCCLUSION_PERCENTS, mean, spread, strict=True)]
        draw_band.polygon(upper + lower[::-1], fill=(*color, 70))
    canvas = Image.alpha_composite(canvas.convert("RGBA"), bands).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    chance = 1 / num_classes
    for start in range(0, WIDTH, 8):  # dashed: PIL draws no dashes
        draw.line(
            [(LEFT + start, xy(0, chance)[1]), (LEFT + min(start + 4, WIDTH), xy(0, chance)[1])], fill="grey"
        )
    for (grid, fill), color in COLORS.items():
        points = [xy(p, found[f"occlusion_acc_{grid}_{fill}_{p}"]) for p in OCCLUSION_PERCENTS]
        draw.line(points, fill=color, width=2)
        for x, y in points:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=color)
    draw.rectangle([xy(0, 1), xy(last, 0)], outline="black")
    for percent in OCCLUSION_PERCENTS:
        draw.text(
            (xy(percent, 0)[0], top + HEIGHT + 3), f"{percent}", fill="black", font=font(11), anchor="ma"
        )
    for acc in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.text((LEFT - 4, xy(0, acc)[1]), f"{100 * acc:g}", fill="black", font=font(11), anchor="rm")
    x_label = (LEFT + WIDTH // 2, top + HEIGHT + BOTTOM - 4)
    draw.text(x_label, "cells dropped (%)", fill="black", font=font(11), anchor="md")
    y_label = vertical_text("accuracy (%)", 11)
    canvas.paste(y_label, (4, top + (HEIGHT - y_label.height) // 2), y_label)
    y = top
    for (grid, fill), label in zip(COLORS, lines, strict=True):
        draw.line([(legend_x, y + 7), (legend_x + 18, y + 7)], fill=COLORS[grid, fill], width=3)
        draw.text((legend_x + 24, y), label, fill="black", font=font(11))
        y += 16
    draw.text((legend_x, y + 8), "cells shuffled:", fill="black", font=font(11))
    for k, text in enumerate(shuffled):
        draw.text((legend_x + 8, y + 24 + 16 * k), text, fill="black", font=font(11))
    draw.text((legend_x, y + 64), f"chance ({100 * chance:.0f} %): dashed", fill="grey", font=font(11))
    return canvas


def occlusion_picture(
    found: dict[str, float], shown: dict[str, Tensor], cell: int, n_images: int, num_classes: int
) -> Image.Image:
    """The curves over a row of example tiles (`shown`: caption -> uint8 ``(C, H, W)``), with a title
    naming the subset, the cell side and the repeats."""
    title = (
        f"Occlusion, {n_images} test images, {cell} px cells (misaligned: moved {cell // 2} px): "
        "accuracy, mean ± std over the repeats"
    )
    curves = curves_panel(found, num_classes)
    tiles, captions = [[tile(image) for image in shown.values()]], [[[name] for name in shown]]
    row = labeled_grid(tiles, captions, title="one test image: 50 % of its cells dropped, or all shuffled")
    width = max(curves.width, row.width, text_width(title) + 2 * GAP)
    canvas = Image.new("RGB", (width, GAP + 15 + curves.height + row.height), "white")
    ImageDraw.Draw(canvas).text((GAP, GAP), title, fill="black", font=font(12))
    canvas.paste(curves, (0, GAP + 15))
    canvas.paste(row, (0, GAP + 15 + curves.height))
    return canvas
