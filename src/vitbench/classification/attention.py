"""Where a ViT's readout tokens look: attention maps by timm's ``AttentionExtract`` and their
rollout across layers (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers",
arXiv 2005.00928)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import VisionTransformer
from timm.utils import AttentionExtract
from torch import Tensor

# The softmax(q k^T) of each block passes through attn_drop (the identity in eval mode).
ATTENTION_MODULES = ["blocks.*.attn.attn_drop"]


def attention_rollout(attentions: Sequence[Tensor]) -> Tensor:
    """How much each output token draws on each input token, through every layer.

    Each layer's attention is averaged over heads; the identity is added for the residual
    connection and the rows renormalized, ``0.5 A + 0.5 I``; the layers are multiplied from
    the first to the last, so ``rollout[b, i, j]`` is token ``i`` after the last layer
    attending to input token ``j``. Every row sums to 1.

    Args:
        attentions: per layer, softmax attention ``(B, heads, T, T)``, first layer first.

    Returns:
        ``(B, T, T)``.
    """
    if not attentions:
        raise ValueError("attention_rollout needs the attention maps of at least one layer.")
    rollout = None
    for attention in attentions:
        mixed = attention.float().mean(1)  # (B, T, T)
        mixed = mixed + torch.eye(mixed.shape[-1], device=mixed.device)
        mixed = mixed / mixed.sum(-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
    return rollout


def readout_tokens(net: VisionTransformer) -> list[str]:
    """The tokens a timm ViT classifies from, each named: its class token, a DeiT's distillation
    token, or (no class token, ``global_pool="avg"``) the average of the patch tokens."""
    if isinstance(net, VisionTransformerDistilled):
        return ["class token", "distillation token"]
    return ["class token"] if net.cls_token is not None else ["patch average"]


@contextmanager
def explicit_attention(net: VisionTransformer) -> Iterator[None]:
    """Run ``net`` in eval mode with the explicit ``softmax(q k^T) v`` attention, eagerly.

    timm's fused attention (``F.scaled_dot_product_attention``, vitbench's default) never forms
    the attention matrix, so ``AttentionExtract`` would find nothing to capture. Afterwards every
    ``fused_attn`` switch and every submodule's train/eval mode are as they were; a compiled net
    runs eagerly meanwhile, so the switch does not make it recompile.
    """
    fused = {m: m.fused_attn for m in net.modules() if hasattr(m, "fused_attn")}
    modes = {m: m.training for m in net.modules()}
    try:
        for module in fused:
            module.fused_attn = False
        with torch.compiler.set_stance("force_eager"), torch.no_grad():
            yield
    finally:
        for module, value in fused.items():
            module.fused_attn = value
        for module, training in modes.items():
            module.training = training


def attention_maps(net: VisionTransformer, x: Tensor) -> list[Tensor]:
    """Softmax attention of every block of a timm ViT for images ``x (B, C, H, W)``:
    ``depth`` tensors ``(B, heads, T, T)``, first block first, with ``T = prefix tokens + patches``.

    The net is left as it was (see :func:`explicit_attention`; the hooks are removed).
    """
    with explicit_attention(net):
        extractor = AttentionExtract(net, names=ATTENTION_MODULES, method="hook")
        try:
            maps = extractor(x)
        finally:
            # timm's FeatureHooks has no public way to remove its hooks.
            for handle in extractor.hooks._handles:
                handle.remove()
    if len(maps) != len(net.blocks):
        raise RuntimeError(f"captured {len(maps)} attention maps from a ViT of {len(net.blocks)} blocks.")
    return list(maps.values())


def token_attention(net: VisionTransformer, x: Tensor) -> dict[str, Tensor]:
    """The rollout of each readout token over the patches, on the patch grid.

    Args:
        net: a timm ``VisionTransformer`` (DeiT's ``VisionTransformerDistilled`` included).
        x: normalized images ``(B, C, H, W)``.

    Returns:
        ``{token name: (B, grid_h, grid_w)}`` in :func:`readout_tokens` order; each map is the
        token's row of the rollout restricted to the patch tokens (its share of the prefix
        tokens left out), so a map sums to at most 1.
    """
    rollout = attention_rollout(attention_maps(net, x))  # (B, T, T)
    prefix, names = net.num_prefix_tokens, readout_tokens(net)
    patches = rollout[:, :, prefix:]  # (B, T, N)
    if net.cls_token is None:  # average pooling: the rows of the patch tokens, averaged
        rows = [patches[:, prefix:].mean(1)]
    else:  # the class token first, then a DeiT's distillation token
        rows = [patches[:, i] for i in range(len(names))]
    grid = net.patch_embed.grid_size
    return {name: row.reshape(len(x), *grid) for name, row in zip(names, rows, strict=True)}  # (B, gh, gw)
