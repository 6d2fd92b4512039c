"""Occlusion and patch order: accuracy with cells of the image dropped or shuffled.

After Naseer et al. 2021, "Intriguing Properties of Vision Transformers" (Random PatchDrop and patch
shuffling). The image is cut into a grid of square cells; the part measures the accuracy with 0, 10,
..., 90 % of the cells dropped, and with all the cells shuffled (a random permutation of them).

* **Cells.** A network with one flat grid of patches (timm's ``VisionTransformer``: ViT, DeiT) gives its
  own: the image side over its patches a side, in the stored pixels the test reads (7 px on 28 px with
  patch 7; 2 px when 28 px images are upsampled to 224 for patches of 16). Every other network (Swin,
  EfficientViT, the CNN, a denoiser read as a classifier) gets the CPU ViT's patch for images of that
  side (``nearest_divisor(side, 7)``, conf/model/net/vit.yaml: 7 on 28 px, 8 on 32 px), so every model
  of a default comparison sees the same cells. ``occlusion_cell_px`` records the side used: a ViT with
  other patches (``size=full``: 4 px on 32 px) gets other cells than the rest, so compare equal sides.
* **Grids.** ``aligned``: cells on the patches. ``misaligned``: the same grid moved right and down by
  half a cell (``cell // 2`` px, 3 px for a 7 px cell), its cells wrapping round the border (the last
  column's cell holds the image's right and left strips), so every cell keeps the same area and a
  fraction of cells dropped is that fraction of the pixels. Naseer et al. found the ViT's robustness to
  dropped patches depends on the grid matching its patches: the misaligned grid tests that.
* **Fills.** In the uint8 pixels the model's test saw (its own normalisation follows): ``zero`` is black
  (0), ``mean`` the run's data mean (``data.mean`` x 255, rounded), which normalises to 0. Naseer et
  al. zero the normalised input, which is our ``mean``; black is what a blank in the image would be.
* **Draws.** A fixed stratified subset of the test split (:data:`IMAGES` images in all, as many of each
  class; drawn with the profile's seed). Per repeat each image gets one random order of its cells and
  one random permutation: at p % the first ``round(p x cells / 100)`` cells of the order are dropped
  (so the fractions of a repeat are nested), the same cells for both grids and both fills (common
  random numbers: the differences between the curves are not noise of the draws). :data:`REPEATS`
  repeats give the mean and the sample std (ddof 1); at 0 % nothing is dropped, std 0. The cost is
  1 + 2 x 2 x 9 x 5 + 2 x 5 = 191 passes over the subset.

Record keys: ``occlusion_acc_{grid}_{fill}_{pct}`` and ``..._std``, ``shuffle_acc_{grid}`` and
``..._std``, ``occlusion_cell_px``, ``occlusion_images`` (:data:`vitbench.classification.task.OCCLUSION_METRICS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor

from vitbench.classification.task import OCCLUSION_FILLS, OCCLUSION_GRIDS, OCCLUSION_PERCENTS
from vitbench.evaluation.context import EvaluateError
from vitbench.evaluation.corruptions import stratified_subset
from vitbench.evaluation.occlusion_picture import FILL_NAMES, occlusion_picture
from vitbench.run.config import nearest_divisor

if TYPE_CHECKING:
    from vitbench.evaluation.context import Context

Grid = Literal["aligned", "misaligned"]
Fill = Literal["zero", "mean"]

IMAGES = (
    300  # the subset: 30 a class on 10 classes; 191 passes over it: ~37 s of one core for the quickstart ViT
)
REPEATS = 5
CPU_VIT_PATCH = 7  # conf/model/net/vit.yaml: patch_size = nearest_divisor(img_size, 7)


def cell_side(model: torch.nn.Module, img_size: int | None, height: int, width: int) -> int:
    """The cell side in stored pixels for images ``(height, width)`` the network sees at `img_size`.

    A timm ``VisionTransformer`` (``model.net``, or `model` itself): the stored side over its patch grid,
    which must be a whole number of pixels; any other network: the CPU ViT's patch for that side.
    """
    net = getattr(model, "net", model)
    if not isinstance(net, VisionTransformer):
        return nearest_divisor(math.gcd(height, width), CPU_VIT_PATCH)
    rows, cols = net.patch_embed.grid_size
    if height % rows or width % cols or height // rows != width // cols:
        raise EvaluateError(
            f"occlusion: the ViT's {rows}x{cols} patches (at img_size {img_size}) are no whole cells of the "
            f"{height}x{width} px images its test reads: no grid of stored pixels aligns with them."
        )
    return height // rows


def grid_offset(grid: Grid, cell: int) -> int:
    """How far the grid's cells are moved right and down from the patches, pixels."""
    return 0 if grid == "aligned" else cell // 2


def fill_value(fill: Fill, mean: list[float]) -> Tensor:
    """The uint8 value ``(C,)`` a dropped cell takes: black, or the data mean (on [0, 1]) x 255 rounded."""
    if fill == "zero":
        return torch.zeros(len(mean), dtype=torch.uint8)
    return torch.tensor([round(255 * m) for m in mean], dtype=torch.uint8)


def dropped_count(percent: int, cells: int) -> int:
    """Cells dropped at `percent` % of `cells`, rounded half up (16 cells: 10 % -> 2, 50 % -> 8)."""
    return (percent * cells + 50) // 100


def drop_cells(images: Tensor, dropped: Tensor, cell: int, offset: int, fill: Tensor) -> Tensor:
    """Images with the chosen cells set to `fill`.

    Args:
        images: (N, C, H, W) uint8; H and W multiples of `cell`.
        dropped: (N, H // cell * W // cell) bool, row-major over the grid: True where the cell goes.
        cell: the cell side, pixels.
        offset: the grid's shift right and down (:func:`grid_offset`); cells wrap round the border.
        fill: (C,) uint8.

    Returns:
        (N, C, H, W) uint8.
    """
    n, _, height, width = images.shape
    rows, cols = height // cell, width // cell
    mask = (
        dropped.view(n, 1, rows, 1, cols, 1).expand(n, 1, rows, cell, cols, cell).reshape(n, 1, height, width)
    )
    mask = mask.roll((offset, offset), dims=(2, 3))  # pixel y takes the mask of y - offset: the grid moves
    return torch.where(mask, fill.view(1, -1, 1, 1).to(images.device), images)


def shuffle_cells(images: Tensor, perm: Tensor, cell: int, offset: int) -> Tensor:
    """Images with their cells rearranged: output cell j holds input cell ``perm[:, j]`` (row-major).

    Args:
        images: (N, C, H, W), H and W multiples of `cell`.
        perm: (N, H // cell * W // cell) int64, a permutation per image.
        cell, offset: as for :func:`drop_cells`.
    """
    n, c, height, width = images.shape
    rows, cols = height // cell, width // cell
    x = images.roll((-offset, -offset), dims=(2, 3))  # the shifted grid's cells onto the patches
    cells = (
        x.view(n, c, rows, cell, cols, cell).permute(0, 2, 4, 1, 3, 5).reshape(n, rows * cols, c, cell, cell)
    )
    cells = cells.gather(1, perm.view(n, -1, 1, 1, 1).expand_as(cells))  # (N, cells, C, cell, cell)
    x = cells.view(n, rows, cols, c, cell, cell).permute(0, 3, 1, 4, 2, 5).reshape(n, c, height, width)
    return x.roll((offset, offset), dims=(2, 3))


@dataclass
class Draws:
    """One repeat's random choices for N images of `cells` cells each.

    Attributes:
        rank: (N, cells) int64: each cell's place in the image's drop order; at k cells dropped, those
            of rank < k go.
        perm: (N, cells) int64: each image's shuffle.
    """

    rank: Tensor
    perm: Tensor

    @classmethod
    def draw(cls, n: int, cells: int, generator: torch.Generator) -> Draws:
        rank = torch.rand(n, cells, generator=generator).argsort(1).argsort(1)
        return cls(rank, torch.rand(n, cells, generator=generator).argsort(1))


def accuracy(predict: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy of `predict` (uint8 ``(N, C, H, W)`` -> logits ``(N, K)``) on `labels` ``(N,)``."""
    return float((predict(images).argmax(-1) == labels).double().mean())


def occlusion_figures(
    predict: Callable[[Tensor], Tensor],
    images: Tensor,
    labels: Tensor,
    cell: int,
    mean: list[float],
    generator: torch.Generator,
    repeats: int = REPEATS,
) -> dict[str, float]:
    """Every occlusion and shuffle accuracy (mean and sample std over `repeats`) of `predict` on `images`
    ``(N, C, H, W)`` uint8 with `labels` ``(N,)``, cells of `cell` px, fills from the data `mean`; the
    draws come from `generator` in a fixed order, so the same seed gives the same figures."""
    n, _, height, width = images.shape
    cells = (height // cell) * (width // cell)
    fills = {fill: fill_value(fill, mean) for fill in OCCLUSION_FILLS}
    clean = accuracy(predict, images, labels)  # 0 % dropped: the same images for every grid and fill
    runs: dict[str, list[float]] = {}
    for _ in range(repeats):
        draws = Draws.draw(n, cells, generator)
        for grid in OCCLUSION_GRIDS:
            offset = grid_offset(grid, cell)
            for percent in OCCLUSION_PERCENTS[1:]:
                dropped = draws.rank < dropped_count(percent, cells)  # (N, cells)
                for fill in OCCLUSION_FILLS:
                    occluded = drop_cells(images, dropped, cell, offset, fills[fill])
                    runs.setdefault(f"occlusion_acc_{grid}_{fill}_{percent}", []).append(
                        accuracy(predict, occluded, labels)
                    )
            shuffled = shuffle_cells(images, draws.perm, cell, offset)
            runs.setdefault(f"shuffle_acc_{grid}", []).append(accuracy(predict, shuffled, labels))
    found: dict[str, float] = {}
    for grid in OCCLUSION_GRIDS:
        for fill in OCCLUSION_FILLS:
            for percent in OCCLUSION_PERCENTS:
                key = f"occlusion_acc_{grid}_{fill}_{percent}"
                values = torch.tensor(runs.get(key, [clean] * repeats), dtype=torch.float64)
                found[key], found[f"{key}_std"] = float(values.mean()), std(values)
    for grid in OCCLUSION_GRIDS:
        values = torch.tensor(runs[f"shuffle_acc_{grid}"], dtype=torch.float64)
        found[f"shuffle_acc_{grid}"], found[f"shuffle_acc_{grid}_std"] = float(values.mean()), std(values)
    return found


def std(values: Tensor) -> float:
    """Sample standard deviation (ddof 1) of `values` ``(R,)``; 0 for one repeat."""
    return float(values.std()) if len(values) > 1 else 0.0


def examples(image: Tensor, cell: int, mean: list[float], generator: torch.Generator) -> dict[str, Tensor]:
    """One image ``(C, H, W)`` uint8 as the part shows it: clean, 50 % dropped on each grid with each
    fill, shuffled on each grid (one draw from `generator`)."""
    cells = (image.shape[1] // cell) * (image.shape[2] // cell)
    draws = Draws.draw(1, cells, generator)
    shown = {"clean": image}
    for grid in OCCLUSION_GRIDS:
        offset = grid_offset(grid, cell)
        for fill in OCCLUSION_FILLS:
            dropped = draws.rank < dropped_count(50, cells)
            shown[f"{grid}, {FILL_NAMES[fill]}"] = drop_cells(
                image[None], dropped, cell, offset, fill_value(fill, mean)
            )[0]
    for grid in OCCLUSION_GRIDS:
        shown[f"{grid}, shuffled"] = shuffle_cells(image[None], draws.perm, cell, grid_offset(grid, cell))[0]
    return shown


def occlusion(context: Context) -> dict[str, float]:
    """The occlusion part: the figures of :func:`occlusion_figures` on a stratified test subset, the cell
    side and the subset's size; and ``pictures/occlusion.png``."""
    images, labels = context.test_split()
    height, width = images.shape[-2:]
    cell = cell_side(context.model, context.classifier.data.get("img_size"), height, width)
    if height % cell or width % cell:
        raise EvaluateError(f"occlusion: {cell} px cells do not tile the {height}x{width} px test images.")
    smallest = int(torch.unique(labels, return_counts=True)[1].min())  # the rarest class of the test split
    per_class = min(max(1, IMAGES // context.num_classes), smallest)
    chosen = stratified_subset(labels, per_class, context.seed)
    images, labels = images[chosen], labels[chosen]
    mean = list(context.classifier.data["mean"])
    found = occlusion_figures(context.predict, images, labels, cell, mean, context.generator(), REPEATS)
    found.update(occlusion_cell_px=float(cell), occlusion_images=float(len(labels)))
    shown = examples(images[0], cell, mean, context.generator())
    context.picture("occlusion", occlusion_picture(found, shown, cell, len(labels), context.num_classes))
    return found
