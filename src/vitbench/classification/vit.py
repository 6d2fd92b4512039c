"""The Vision Transformer (ViT) network for small images, and DeiT's distilled ViT (``model.net``)."""

from __future__ import annotations

from typing import Literal

import timm
from torch import nn

from vitbench.run.checks import check_num_heads, check_patch_size, check_rate

NET = "model.net"  # where the network's keys live, for the messages


def vit_arguments(
    img_size: int,
    patch_size: int,
    in_chans: int,
    num_classes: int,
    embed_dim: int,
    depth: int,
    num_heads: int,
    mlp_ratio: float,
    drop_path_rate: float,
    key: str = "model",
) -> dict:
    """Check a small-image ViT's shape and return the keyword arguments of timm's
    ``VisionTransformer`` (and ``VisionTransformerDistilled``, which takes the same); ``key`` is where
    the shape keys live, for the messages (``model.net``; MAE's encoder: ``model``)."""
    check_patch_size(img_size, patch_size, key)
    check_num_heads(num_heads, embed_dim, "embed_dim", key)
    return dict(
        img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
        embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=True,
        drop_path_rate=drop_path_rate,
    )  # fmt: skip


def vit(
    num_classes: int = 10,
    img_size: int = 28,
    in_chans: int = 1,
    patch_size: int = 7,
    embed_dim: int = 128,
    depth: int = 6,
    num_heads: int = 4,
    mlp_ratio: float = 2.0,
    drop_path_rate: float = 0.0,
    global_pool: Literal["token", "avg"] = "token",
    distilled: bool = False,
) -> nn.Module:
    """ViT (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words"): timm's ``VisionTransformer``.

    Small-image adaptation: a 28 px Fashion-MNIST image with ``patch_size=7`` becomes a 4x4
    grid of 16 tokens plus the class token, and the model is ~0.8M parameters (width 128,
    depth 6, MLP ratio 2) instead of ViT-Ti's 5.7M: ~1000 training images/s at batch 256
    on two CPU cores. Patch 4 (49 tokens) at the same size is ~3x slower.

    Built as timm's ``vit_tiny_patch16_224`` with these arguments, so that timm records them and
    ``vitbench-export`` writes a folder that ``timm.create_model("local-dir:...")`` rebuilds.

    Shapes: ``x (B, in_chans, img_size, img_size)`` -> logits ``(B, num_classes)``;
    tokens ``(B, 1 + (img_size / patch_size) ** 2, embed_dim)`` inside.

    Args:
        num_classes: Number of classes.
        img_size: Side of the square input image (``data.img_size``).
        in_chans: Image channels (``data.in_chans``).
        patch_size: Side of a square patch; must divide ``img_size``.
        embed_dim: Token width; must be divisible by ``num_heads``.
        depth: Number of transformer blocks.
        num_heads: Attention heads per block.
        mlp_ratio: Hidden width of the MLP relative to ``embed_dim``.
        drop_path_rate: Stochastic-depth rate of the last block (linear in depth).
        global_pool: ``"token"``: classify the class token (the original ViT); ``"avg"``: no class
            token, classify the average of the patch tokens (Beyer et al. 2022, "Better plain ViT
            baselines", arXiv 2205.01580, found it trains faster).
        distilled: DeiT's network (Touvron et al. 2021, arXiv 2012.12877; ``model=deit``): timm's
            ``VisionTransformerDistilled``, built as ``deit_tiny_distilled_patch16_224``, with a
            distillation token and a second head beside the class token's. It classifies its two
            tokens, so ``global_pool`` is ``token`` only.
    """
    check_rate(f"{NET}.drop_path_rate", drop_path_rate, "0.1")
    args = vit_arguments(
        img_size,
        patch_size,
        in_chans,
        num_classes,
        embed_dim,
        depth,
        num_heads,
        mlp_ratio,
        drop_path_rate,
        NET,
    )
    if distilled:
        if global_pool != "token":
            raise ValueError(
                f"{NET}.global_pool={global_pool!r}: DeiT classifies its class and distillation tokens; "
                f"use {NET}.global_pool=token (average pooling exists for model=vit)."
            )
        return timm.create_model("deit_tiny_distilled_patch16_224", **args)
    if global_pool not in ("token", "avg"):
        raise ValueError(
            f"{NET}.global_pool={global_pool!r} must be token (class token) or avg (mean of patches)."
        )
    return timm.create_model(
        "vit_tiny_patch16_224", **args, global_pool=global_pool, class_token=global_pool == "token"
    )
