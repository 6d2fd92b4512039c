"""Vision Transformer (ViT) for small images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from timm.models.vision_transformer import VisionTransformer
from torch.optim.lr_scheduler import LRScheduler

from vitbench.classification.base import ImageClassifier
from vitbench.classification.pretrained import Pretrained, timm_network
from vitbench.classification.probe import Finetune
from vitbench.run.checks import check_num_heads, check_patch_size, check_rate


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
) -> dict:
    """Check a small-image ViT's shape and return the keyword arguments of timm's
    ``VisionTransformer`` (and ``VisionTransformerDistilled``, which takes the same)."""
    check_patch_size(img_size, patch_size)
    check_num_heads(num_heads, embed_dim)
    return dict(
        img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
        embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=True,
        drop_path_rate=drop_path_rate,
    )  # fmt: skip


class ViTModule(ImageClassifier):
    """ViT (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words") from timm.

    Small-image adaptation: a 28 px Fashion-MNIST image with ``patch_size=7`` becomes a 4x4
    grid of 16 tokens plus the class token, and the model is ~0.8M parameters (width 128,
    depth 6, MLP ratio 2) instead of ViT-Ti's 5.7M: ~1000 training images/s at batch 256
    on two CPU cores. Patch 4 (49 tokens) at the same size is ~3x slower.

    Shapes: ``x (B, in_chans, img_size, img_size)`` -> logits ``(B, num_classes)``;
    tokens ``(B, 1 + (img_size / patch_size) ** 2, embed_dim)`` inside.

    With ``timm_name`` (``size=pretrained``: ViT-S/16) the network is timm's own architecture at the
    run's ``img_size``, ``in_chans`` and ``num_classes``, optionally with ``pretrained`` weights; the
    CPU-size shape keys must then be None.

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
        fused_attn, compile: See :meth:`ImageClassifier.set_speed_options`.
        timm_name, timm_args, pretrained, data_mean, data_std: timm's architecture and its weights
            (:func:`vitbench.classification.pretrained.timm_network`).
        finetune: ``full`` or ``linear`` (:meth:`ImageClassifier.set_finetune`).
        optimizer, scheduler, label_smoothing: See :class:`ImageClassifier`.
    """

    def __init__(
        self,
        num_classes: int = 10,
        img_size: int = 28,
        in_chans: int = 1,
        patch_size: int | None = 7,
        embed_dim: int | None = 128,
        depth: int | None = 6,
        num_heads: int | None = 4,
        mlp_ratio: float | None = 2.0,
        drop_path_rate: float = 0.0,
        global_pool: str | None = "token",
        fused_attn: bool = True,
        compile: bool = False,
        timm_name: str | None = None,
        timm_args: dict[str, Any] | None = None,
        pretrained: Pretrained = False,
        finetune: Finetune = "full",
        data_mean: Sequence[float] | None = None,
        data_std: Sequence[float] | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        check_rate("model.drop_path_rate", drop_path_rate, "0.1")
        cpu_size = dict(
            patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio
        )
        net, init = timm_network(
            timm_name, pretrained, timm_args, cpu_size, (data_mean, data_std), num_classes=num_classes,
            in_chans=in_chans, img_size=img_size, drop_path_rate=drop_path_rate, global_pool=global_pool,
        )  # fmt: skip
        if net is None:
            args = vit_arguments(
                img_size,
                in_chans=in_chans,
                num_classes=num_classes,
                drop_path_rate=drop_path_rate,
                **cpu_size,
            )
            if global_pool not in ("token", "avg"):
                raise ValueError(
                    f"model.global_pool={global_pool!r} must be token (class token) or avg (mean of patches)."
                )
        super().__init__(num_classes, optimizer, scheduler, label_smoothing)
        if net is None:
            net = VisionTransformer(**args, global_pool=global_pool, class_token=global_pool == "token")
        self.net, self.init_record = net, init
        self.set_speed_options(compile=compile, fused_attn=fused_attn)
        self.set_finetune(finetune)
