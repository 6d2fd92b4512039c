"""Mean attention distance (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", Fig. 7): how far
in the image each head of each block looks.

For one query patch, the sum over the key patches of its attention times the distance between the two
patches' centres, in pixels over the image side; averaged over the query patches of every image, each
head apart. Prefix tokens (class, a DeiT's distillation token, registers) are dropped as queries and as
keys, and each row renormalised over the patch keys; the mass they held is recorded beside.

Swin attends within windows: its distance is measured the same way inside each window, between the
tokens' own places in the image (the cyclic shift undone, so a shifted window's token is where it
came from), at the stage's stride (patch size x 2 per merging). A key the shift mask hides holds no
mass. The tokens timm pads when the grid does not divide into windows are no image patch: they are
dropped as prefix tokens are, and their mass counts as the prefix mass. EfficientViT's ReLU linear
attention forms no softmax map, and a CNN none: they have no attention distance.

Uniform attention's value is computed on the same layout: every query attending equally to every
key it may see (a ViT: all patches; Swin: its window, within the mask).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer, window_partition
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from vitbench.classification.attention import attention_maps, explicit_attention


@dataclass(frozen=True)
class Layout:
    """Where the tokens of one block's attention lie in the image.

    Attributes:
        xy: ``(W, N, 2)`` pixel centre of token ``n`` of window ``w`` (``W = 1`` without windows);
            NaN for a token that is no image patch (a prefix or padding token).
        allowed: ``(W, N, N)`` bool, the keys each query may attend to.
    """

    xy: Tensor
    allowed: Tensor


@dataclass
class BlockDistance:
    """One block's figures over the images seen: ``heads (H,)`` mean distance per head and
    ``prefix_mass (H,)`` the mass prefix tokens held, both averaged over query patches; ``uniform``
    uniform attention's distance on the same layout. Distances are fractions of the image side."""

    heads: Tensor
    prefix_mass: Tensor
    uniform: float


def grid_centres(rows: int, cols: int, stride_y: float, stride_x: float) -> Tensor:
    """Pixel centres ``(rows, cols, 2)`` (x, y) of a grid of cells ``stride_y x stride_x``, float64."""
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.stack([(c + 0.5) * stride_x, (r + 0.5) * stride_y], -1).double()


def distance_sums(attn: Tensor, layout: Layout, side: float) -> tuple[Tensor, Tensor, int]:
    """Attention ``(B * W, H, N, N)`` (softmax rows, windows of one image consecutive) -> per head the
    summed renormalised distance ``(H,)`` and summed prefix mass ``(H,)`` over the query patches, and
    how many query patches there were."""
    windows, n = layout.xy.shape[:2]
    attn = attn.detach().double().cpu().reshape(-1, windows, attn.shape[1], n, n)  # (B, W, H, N, N)
    patch = ~torch.isnan(layout.xy[..., 0])  # (W, N)
    xy = layout.xy.nan_to_num(0.0)
    dist = torch.cdist(xy, xy) / side * patch[:, None, :]  # (W, N, N): 0 towards a non-patch key
    on_patches = (attn * patch[None, :, None, None, :]).sum(-1)  # (B, W, H, N)
    row = (attn * dist[None, :, None]).sum(-1) / on_patches.clamp_min(1e-30)  # (B, W, H, N)
    queries = patch[None, :, None, :].double()  # (1, W, 1, N): patch queries only
    dist_sum = (row * queries).sum((0, 1, 3))  # (H,)
    # Summed, not 1 - on_patches: rounding would make a row without prefix mass slightly negative.
    off_patches = (attn * ~patch[None, :, None, None, :]).sum(-1)  # (B, W, H, N)
    mass_sum = (off_patches * queries).sum((0, 1, 3))  # (H,)
    return dist_sum, mass_sum, attn.shape[0] * int(patch.sum())


def uniform_distance(layout: Layout, side: float) -> float:
    """Mean distance when every query attends equally to each key `layout` allows."""
    allowed = layout.allowed.double()  # (W, N, N)
    uniform = allowed / allowed.sum(-1, keepdim=True).clamp_min(1)
    dist_sum, _, count = distance_sums(uniform[:, None], layout, side)  # one image, one head
    return float(dist_sum[0]) / count


def vit_layout(net: VisionTransformer) -> Layout:
    """A timm ViT's tokens: its prefix tokens first (no place), then the patches row by row."""
    (gh, gw), (ph, pw) = net.patch_embed.grid_size, net.patch_embed.patch_size
    patches = grid_centres(gh, gw, ph, pw).reshape(-1, 2)  # (gh * gw, 2)
    prefix = torch.full((net.num_prefix_tokens, 2), float("nan"), dtype=torch.float64)
    xy = torch.cat([prefix, patches])[None]  # (1, T, 2)
    return Layout(xy, torch.ones(1, xy.shape[1], xy.shape[1], dtype=torch.bool))


def swin_layout(block: nn.Module, stride: float) -> Layout:
    """One timm ``SwinTransformerBlock``'s windows, as its ``_attn`` makes them: the grid rolled by
    the shift, padded to whole windows, partitioned; the shift mask its own."""
    (h, w), (wh, ww), (sh, sw) = block.input_resolution, block.window_size, block.shift_size
    xy = grid_centres(h, w, stride, stride)[None]  # (1, h, w, 2)
    if sh or sw:
        xy = torch.roll(xy, shifts=(-sh, -sw), dims=(1, 2))
    pad_h, pad_w = (wh - h % wh) % wh, (ww - w % ww) % ww
    xy = F.pad(xy, (0, 0, 0, pad_w, 0, pad_h), value=float("nan"))  # (1, Hp, Wp, 2)
    windows = window_partition(xy, (wh, ww)).reshape(-1, wh * ww, 2)  # (W, N, 2)
    if getattr(block, "dynamic_mask", False):
        mask = block.get_attn_mask(torch.zeros(1, *xy.shape[1:3], 1))
    else:
        mask = block.attn_mask
    n = wh * ww
    allowed = torch.ones(len(windows), n, n, dtype=torch.bool) if mask is None else mask.cpu() == 0
    return Layout(windows, allowed)


def swin_blocks(net: SwinTransformer) -> list[tuple[nn.Module, float]]:
    """Every block of a timm Swin, first first, with its stage's stride in pixels."""
    stride, blocks = float(net.patch_embed.patch_size[0]), []
    for stage in net.layers:
        if not isinstance(stage.downsample, nn.Identity):  # patch merging: 2x2 tokens become one
            stride *= 2
        blocks += [(block, stride) for block in stage.blocks]
    return blocks


def swin_attention_maps(net: SwinTransformer, x: Tensor) -> list[Tensor]:
    """Softmax attention of every Swin block for images ``x (B, C, H, W)``: per block
    ``(B * windows, heads, N, N)``, first block first; the net is left as it was."""
    maps: list[Tensor] = []
    blocks = [block for block, _ in swin_blocks(net)]
    hooks = [b.attn.softmax.register_forward_hook(lambda m, i, out: maps.append(out)) for b in blocks]
    try:
        with explicit_attention(net):  # the fused path never forms the softmax
            net.forward_features(x)
    finally:
        for hook in hooks:
            hook.remove()
    if len(maps) != len(blocks):
        raise RuntimeError(f"captured {len(maps)} attention maps from a Swin of {len(blocks)} blocks.")
    return maps


def attention_setup(net: nn.Module) -> tuple[Callable[[Tensor], list[Tensor]], list[Layout]] | None:
    """How to capture `net`'s attention and each block's layout; None for a network without
    softmax attention."""
    if isinstance(net, VisionTransformer):
        return (lambda x: attention_maps(net, x)), [vit_layout(net)] * len(net.blocks)
    if isinstance(net, SwinTransformer):
        layouts = [swin_layout(block, stride) for block, stride in swin_blocks(net)]
        return (lambda x: swin_attention_maps(net, x)), layouts
    return None


def attention_distances(
    net: nn.Module, batches: list[Tensor], side: float | None = None
) -> list[BlockDistance] | None:
    """Each block's mean attention distance over normalised images, given in `batches` of
    ``(B, C, H, W)`` on the network's device; None for a network without softmax attention.

    Args:
        net: a timm ``VisionTransformer`` (DeiT's included) or ``SwinTransformer``; anything else
            has no attention distance.
        batches: the images, a few at a time (a block's maps are ``(B, heads, T, T)``).
        side: the image side in pixels (default the images' width).
    """
    setup = attention_setup(net)
    if setup is None:
        return None
    capture, layouts = setup
    side = float(side or batches[0].shape[-1])
    sums = [[0.0, 0.0, 0] for _ in layouts]
    for x in batches:
        for total, attn, layout in zip(sums, capture(x), layouts, strict=True):
            dist, mass, count = distance_sums(attn, layout, side)
            total[0], total[1], total[2] = total[0] + dist, total[1] + mass, total[2] + count
    return [
        BlockDistance(dist / count, mass / count, uniform_distance(layout, side))
        for (dist, mass, count), layout in zip(sums, layouts, strict=True)
    ]
