"""The EfficientViT (MIT) network for small images (``model.net``)."""

from __future__ import annotations

from collections.abc import Sequence

import timm
from torch import nn

from vitbench.classification.swin import halved_sides
from vitbench.classification.vit import NET
from vitbench.run.checks import check_rate

# timm builds linear-attention blocks only from the third stage after the stem on.
FIRST_ATTENTION_STAGE = 3


def feature_sides(img_size: int, num_entries: int) -> list[int]:
    """Feature-map side after the stem and after each stage, for ``num_entries`` widths.

    The stem and each stage start with a stride-2, padding-1 3x3 conv, so every step
    halves the side with ceil (28 -> 14 -> 7 -> 4 -> 2).
    """
    return halved_sides((img_size + 1) // 2, num_entries)


def efficientvit(
    num_classes: int = 10,
    img_size: int = 28,
    in_chans: int = 1,
    widths: Sequence[int] = (16, 32, 64, 128),
    depths: Sequence[int] = (1, 1, 2, 2),
    head_dim: int = 16,
    expand_ratio: float = 4.0,
    head_widths: Sequence[int] = (256, 256),
    drop_rate: float = 0.0,
) -> nn.Module:
    """EfficientViT (Cai et al., 2023, "EfficientViT: Lightweight Multi-Scale Attention for
    High-Resolution Dense Prediction"), the MIT B-series design: timm's ``EfficientVit``, built as
    ``efficientvit_b0`` with these arguments (so that ``vitbench-export`` writes a folder timm rebuilds).

    ``widths[0]``/``depths[0]`` describe the stem (stride 2); every further entry is one
    stage that halves the resolution again, so the total stride is ``2**len(widths)``.
    Stages from the third after the stem on use ReLU linear attention (LiteMLA); earlier
    ones are MBConv blocks.

    Small-image adaptation: EfficientViT-B0 has 5 entries (stride 32), which on 28 px would
    end on a 1x1 map where attention over one token is meaningless. The default keeps
    4 entries (28 -> 14 -> 7 -> 4 -> 2), so attention runs on the final 2x2 map, and
    uses narrow widths and a small head ((256, 256) instead of (1024, 1280)) because this
    network is made of many tiny ops that are slow on a CPU (~0.7M parameters, ~900
    training images/s at batch 256 on two CPU cores). A configuration whose
    final map would be 1x1 is refused at construction.

    Shapes: ``x (B, in_chans, H, W)`` -> logits ``(B, num_classes)``; the last stage's
    features are ``(B, widths[-1], S, S)`` with ``S`` the last of :func:`feature_sides`.

    Args:
        num_classes: Number of classes.
        img_size: Side of the square input image (``data.img_size``); used for the checks.
        in_chans: Image channels (``data.in_chans``).
        widths: Channels of the stem and of each stage.
        depths: Blocks of the stem and of each stage (same length as ``widths``).
        head_dim: Channels per attention head; must divide the attention stages' widths.
        expand_ratio: MBConv and MLP expansion ratio.
        head_widths: Widths of the two-layer classifier head.
        drop_rate: Dropout before the final linear layer.
    """
    check_rate(f"{NET}.drop_rate", drop_rate, "0.0 to 0.1")
    # Hydra passes lists; tuples, as timm's own architectures state them.
    widths, depths, head_widths = (tuple(int(v) for v in seq) for seq in (widths, depths, head_widths))
    check_efficientvit_shape(img_size, widths, depths, head_dim, head_widths)
    return timm.create_model(
        "efficientvit_b0", in_chans=in_chans, num_classes=num_classes, widths=widths, depths=depths,
        head_dim=head_dim, expand_ratio=expand_ratio, head_widths=head_widths, drop_rate=drop_rate,
    )  # fmt: skip


def check_efficientvit_shape(
    img_size: int,
    widths: tuple[int, ...],
    depths: tuple[int, ...],
    head_dim: int,
    head_widths: tuple[int, ...],
) -> None:
    """Raise ValueError, naming the key to change, for an EfficientViT that cannot run as configured."""
    if len(widths) != len(depths):
        raise ValueError(
            f"{NET}.widths={list(widths)} and {NET}.depths={list(depths)} need one entry each for the stem "
            f"and every stage; give them the same length."
        )
    if len(widths) <= FIRST_ATTENTION_STAGE:
        raise ValueError(
            f"{NET}.widths={list(widths)} has {len(widths)} entries, so no stage uses attention (timm "
            f"starts it at entry {FIRST_ATTENTION_STAGE + 1}); give at least {FIRST_ATTENTION_STAGE + 1} entries."
        )
    if len(head_widths) != 2:
        raise ValueError(
            f"{NET}.head_widths={list(head_widths)} must have exactly 2 entries, e.g. [256, 256]."
        )
    sides = feature_sides(img_size, len(widths))
    if sides[-1] == 1:
        usable = next(i for i, side in enumerate(sides) if side == 1)  # entries that keep sides >= 2
        raise ValueError(
            f"with data.img_size={img_size} the feature map shrinks {' -> '.join(map(str, [img_size, *sides]))}"
            f" and collapses to 1x1 after {len(widths)} entries of {NET}.widths/{NET}.depths; keep at most "
            f"{usable} entries there (fewer stages) or use a larger data.img_size (at least "
            f"{2 ** len(widths) + 1})."
        )
    for i in range(FIRST_ATTENTION_STAGE, len(widths)):
        if widths[i] % head_dim:
            raise ValueError(
                f"{NET}.widths[{i}]={widths[i]} is an attention stage and must be a multiple of "
                f"{NET}.head_dim={head_dim}."
            )
