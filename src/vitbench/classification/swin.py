"""The Swin Transformer network for small images (``model.net``)."""

from __future__ import annotations

from collections.abc import Sequence

import timm
from torch import nn

from vitbench.classification.vit import NET
from vitbench.run.checks import check_patch_size, check_rate


def halved_sides(side: int, count: int) -> list[int]:
    """``count`` sides from ``side`` on, each the previous halved with ceil (7 -> 4 -> 2 -> 1).

    A Swin stage's token grid: timm's PatchMerging pads an odd grid by one row and column before
    merging 2x2 neighbours, so a 7x7 stage becomes 4x4, not 3x3; and an EfficientViT stage's map
    (a stride-2, padding-1 conv).
    """
    sides = [side]
    for _ in range(count - 1):
        sides.append((sides[-1] + 1) // 2)
    return sides


def swin(
    num_classes: int = 10,
    img_size: int = 28,
    in_chans: int = 1,
    patch_size: int = 4,
    embed_dim: int = 64,
    depths: Sequence[int] = (2, 2),
    num_heads: Sequence[int] = (2, 4),
    window_size: int = 4,
    mlp_ratio: float = 2.0,
    drop_path_rate: float = 0.0,
) -> nn.Module:
    """Swin Transformer (Liu et al., 2021, "Swin Transformer: Hierarchical Vision Transformer using
    Shifted Windows"): timm's ``SwinTransformer``, built as ``swin_tiny_patch4_window7_224`` with these
    arguments (so that ``vitbench-export`` writes a folder timm rebuilds).

    Small-image adaptation (the defaults, for 28 px on two CPU cores): patch 4 gives a 7x7
    token grid, which timm pads to 8x8 for 2x2 shifted windows of 4; the second stage runs
    at 4x4 (timm pads the odd grid before merging), widths 64/128, 32 channels per head
    (~0.37M parameters). Patch 2 with windows of 7 (14x14 grid, three stages) is slightly
    more accurate but half as fast; ``size=full`` uses it (patch 2, window 4 on 32 px). Later
    stages whose grid is smaller than the window attend globally, as Swin's last stage
    does at 224 px. Unlike timm, a window larger than the *first* grid is refused rather
    than silently shrunk, so the config states what actually runs.

    Shapes: ``x (B, in_chans, img_size, img_size)`` -> logits ``(B, num_classes)``; stage
    ``i`` holds tokens ``(B, G_i, G_i, embed_dim * 2**i)`` with ``G_0 = img_size / patch_size``.

    Args:
        num_classes: Number of classes.
        img_size: Side of the square input image (``data.img_size``).
        in_chans: Image channels (``data.in_chans``).
        patch_size: Side of a square patch; must divide ``img_size``.
        embed_dim: Width of the first stage; doubled at every later stage.
        depths: Blocks per stage.
        num_heads: Heads per stage (same length as ``depths``).
        window_size: Side of an attention window; at most the first stage's grid.
        mlp_ratio: Hidden width of the MLP relative to the stage width.
        drop_path_rate: Stochastic-depth rate of the last block.
    """
    check_rate(f"{NET}.drop_path_rate", drop_path_rate, "0.1")
    # Hydra passes lists; tuples, as timm's own architectures state them.
    depths, num_heads = tuple(int(d) for d in depths), tuple(int(h) for h in num_heads)
    check_swin_shape(img_size, patch_size, embed_dim, depths, num_heads, window_size)
    return timm.create_model(
        "swin_tiny_patch4_window7_224", img_size=img_size, in_chans=in_chans, num_classes=num_classes,
        patch_size=patch_size, embed_dim=embed_dim, depths=depths, num_heads=num_heads,
        window_size=window_size, mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate,
    )  # fmt: skip


def check_swin_shape(
    img_size: int,
    patch_size: int,
    embed_dim: int,
    depths: tuple[int, ...],
    num_heads: tuple[int, ...],
    window_size: int,
) -> None:
    """Raise ValueError, naming the key to change, for a Swin that cannot run as configured."""
    check_patch_size(img_size, patch_size, NET)
    if len(num_heads) != len(depths):
        raise ValueError(
            f"{NET}.num_heads={list(num_heads)} needs one entry per stage of {NET}.depths={list(depths)}."
        )
    grid = img_size // patch_size
    if not 1 <= window_size <= grid:
        raise ValueError(
            f"{NET}.window_size={window_size} does not fit the {grid}x{grid} token grid of the first stage "
            f"(data.img_size={img_size} / {NET}.patch_size={patch_size}); set {NET}.window_size <= {grid}."
        )
    sides = halved_sides(grid, len(depths))
    # Merging a 1x1 grid only pads it with zeros: such a stage adds cost, not context.
    usable = next((i for i, side in enumerate(sides[:-1]) if side == 1), None)
    if usable is not None:
        raise ValueError(
            f"{NET}.depths={list(depths)} has {len(depths)} stages, but the {grid}x{grid} token grid is "
            f"already 1x1 at stage {usable}; use at most {usable + 1} stages, a smaller {NET}.patch_size "
            f"or a larger data.img_size."
        )
    for i, heads in enumerate(num_heads):
        width = embed_dim * 2**i
        if width % heads:
            raise ValueError(
                f"stage {i} has width {NET}.embed_dim * 2**{i} = {width}, not divisible by "
                f"{NET}.num_heads[{i}]={heads}; choose heads that divide the stage width."
            )
