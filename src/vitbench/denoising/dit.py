"""The denoising transformer of DiT and JiT: a ViT whose blocks are modulated by (t, class).

DiT: Peebles & Xie 2023, "Scalable Diffusion Models with Transformers", arXiv 2212.09748.
JiT: Li & He 2025, "Back to Basics: Let Denoising Generative Models Denoise", arXiv 2511.13720.
Attention, MLPs, patch embedding, RMSNorm and the sin-cos position table are timm's; what is
written here is what DiT adds to a ViT: the conditioning embeddings and adaLN-Zero.

Departures from JiT's released network: a fixed 2-D sin-cos position table (DiT's) instead of
JiT's rotary embeddings, and the class enters through adaLN only (JiT also prepends in-context
class tokens); JiT's bottleneck embedding, qk-norm, RMSNorm and SwiGLU are switches here.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from timm.layers import Attention, Mlp, PatchEmbed, RmsNorm, SwiGLU, build_sincos2d_pos_embed
from torch import Tensor, nn

Norm = Literal["layer", "rms"]
MlpKind = Literal["gelu", "swiglu"]


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN: ``x (N, T, D)`` scaled and shifted per sample by ``shift, scale (N, D)``."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def make_norm(kind: Norm, dim: int, affine: bool = False) -> nn.Module:
    # The block norms carry no affine parameters: adaLN supplies the scale and shift.
    return (
        nn.LayerNorm(dim, elementwise_affine=affine, eps=1e-6)
        if kind == "layer"
        else RmsNorm(dim, affine=affine)
    )


class TimestepEmbedder(nn.Module):
    """t in [0, 1] ``(N,)`` -> ``(N, D)``: sinusoidal features of 1000 t, then an MLP (as DiT,
    whose t counts 1000 diffusion steps; scaling keeps the same frequencies for t in [0, 1])."""

    def __init__(self, dim: int, freq_dim: int = 256, max_period: float = 10_000.0) -> None:
        super().__init__()
        self.freq_dim, self.max_period = freq_dim, max_period
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(self.max_period) * torch.arange(half, device=t.device) / half)  # (half,)
        args = 1000.0 * t.float()[:, None] * freqs[None]  # (N, half)
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))  # (N, D)


class PaddedSwiGLU(SwiGLU):
    """timm's SwiGLU (without its optional hidden norm) whose hidden units are padded with zeros to a
    multiple of 8 inside the forward pass.

    2/3 of a GELU MLP's width is rarely a multiple of 8 (341 at width 128), and the CPU's matrix
    products slow down by about half on such a width: measured here, ``(4096, 128) @ (128, 341)`` at
    46-54 GFLOP/s against 77-93 for ``@ (128, 344)``, on one core. The padded units have zero weights
    and bias, so they output exactly 0 and pass nothing on: outputs and gradients are the unpadded
    MLP's (to float rounding), and the parameters keep their names and shapes (``fc1_g``, ``fc1_x``,
    ``fc2``), so checkpoints load either way.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(dim, hidden_features=hidden)

    def forward(self, x: Tensor) -> Tensor:
        """``x (..., D)`` -> ``(..., D)``."""
        pad = -self.fc1_g.out_features % 8
        if not pad:
            return super().forward(x)
        gate = F.linear(x, F.pad(self.fc1_g.weight, (0, 0, 0, pad)), F.pad(self.fc1_g.bias, (0, pad)))
        value = F.linear(x, F.pad(self.fc1_x.weight, (0, 0, 0, pad)), F.pad(self.fc1_x.bias, (0, pad)))
        hidden = self.drop1(self.act(gate) * value)  # (..., hidden + pad), the padded units 0
        return self.drop2(F.linear(hidden, F.pad(self.fc2.weight, (0, pad)), self.fc2.bias))


class DiTBlock(nn.Module):
    """A pre-norm transformer block whose norms are modulated by the conditioning ``c (N, D)``:
    shift, scale and a gate for attention and for the MLP (adaLN-Zero, DiT Fig. 3). The
    modulation is zero-initialised, so the gates start at 0 and the block at the identity."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, qk_norm: bool, norm: Norm, mlp: MlpKind
    ) -> None:
        super().__init__()
        self.norm1 = make_norm(norm, dim)
        qk_norm_layer = RmsNorm if norm == "rms" else nn.LayerNorm
        self.attn = Attention(dim, num_heads, qkv_bias=True, qk_norm=qk_norm, norm_layer=qk_norm_layer)
        self.norm2 = make_norm(norm, dim)
        hidden = int(dim * mlp_ratio)
        if mlp == "swiglu":  # JiT's MLP; 2/3 of the hidden width keeps the parameter count of a GELU MLP
            self.mlp = PaddedSwiGLU(dim, int(hidden * 2 / 3))
        else:
            self.mlp = Mlp(dim, hidden_features=hidden, act_layer=partial(nn.GELU, approximate="tanh"))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """``x (N, T, D)``, ``c (N, D)`` -> ``(N, T, D)``."""
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.adaLN_modulation(c).chunk(
            6, dim=-1
        )  # 6 x (N, D)
        x = x + gate_a.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_a, scale_a))
        return x + gate_m.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_m, scale_m))


class FinalLayer(nn.Module):
    """Modulated norm, then a zero-initialised linear map of each token to its patch's pixels."""

    def __init__(self, dim: int, patch_size: int, out_chans: int, norm: Norm) -> None:
        super().__init__()
        self.norm = make_norm(norm, dim)
        self.linear = nn.Linear(dim, patch_size * patch_size * out_chans)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """``x (N, T, D)``, ``c (N, D)`` -> ``(N, T, p * p * C)``."""
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class BottleneckPatchEmbed(nn.Module):
    """JiT's patch embedding: each patch is projected to ``bottleneck`` dims, then up to the width.

    JiT (Sec. 4.2) finds that a low-rank linear embedding keeps x-prediction working when a patch
    has more pixels than the network is wide. Built from timm's PatchEmbed plus a linear map.
    """

    def __init__(self, img_size: int, patch_size: int, in_chans: int, bottleneck: int, dim: int) -> None:
        super().__init__()
        self.proj_in = PatchEmbed(img_size, patch_size, in_chans, bottleneck, bias=False)
        self.proj_out = nn.Linear(bottleneck, dim)
        self.num_patches = self.proj_in.num_patches

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_out(self.proj_in(x))  # (N, T, r) -> (N, T, D)


class DiT(nn.Module):
    """Class-conditional denoising transformer on pixels (DiT's architecture, JiT's switches).

    Shapes: ``x (N, C, H, W)`` noisy images, ``t (N,)`` in [0, 1], ``y (N,)`` labels in
    ``[0, num_classes]`` where ``num_classes`` is the null class of classifier-free guidance
    -> ``(N, C, H, W)``, read as x, v or eps by the caller. Tokens ``(N, (H / p) ** 2, width)``.

    Args:
        img_size: Side of the square image; ``patch_size`` must divide it.
        patch_size: Side of a patch; a patch holds ``p * p * C`` numbers (the "patch dimension").
        in_chans: Image channels.
        num_classes: Classes; the label table has one more row, the null class.
        width: Token width; divisible by ``num_heads`` and by 4 (the 2-D sin-cos table).
        depth: Number of blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width relative to ``width``.
        bottleneck_dim: JiT's bottleneck patch embedding of this rank; None: DiT's linear patch embedding.
        qk_norm: Normalise queries and keys (JiT).
        norm: ``layer`` (DiT) or ``rms`` (JiT) for the block norms.
        mlp: ``gelu`` (DiT) or ``swiglu`` (JiT).
    """

    def __init__(
        self,
        img_size: int = 28,
        patch_size: int = 7,
        in_chans: int = 1,
        num_classes: int = 10,
        width: int = 128,
        depth: int = 6,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        bottleneck_dim: int | None = None,
        qk_norm: bool = False,
        norm: Norm = "layer",
        mlp: MlpKind = "gelu",
    ) -> None:
        super().__init__()
        self.patch_size, self.in_chans, self.num_classes = patch_size, in_chans, num_classes
        if bottleneck_dim:
            self.x_embedder = BottleneckPatchEmbed(img_size, patch_size, in_chans, bottleneck_dim, width)
        else:
            self.x_embedder = PatchEmbed(img_size, patch_size, in_chans, width)
        self.grid = img_size // patch_size
        # Fixed, not learned (DiT): a buffer, so it moves with the module and stays out of the optimizer.
        pos = build_sincos2d_pos_embed([self.grid, self.grid], dim=width)  # (T, D)
        self.register_buffer("pos_embed", pos.unsqueeze(0), persistent=False)  # (1, T, D)
        self.t_embedder = TimestepEmbedder(width)
        self.y_embedder = nn.Embedding(num_classes + 1, width)  # row num_classes: the null class of CFG
        self.blocks = nn.ModuleList(
            DiTBlock(width, num_heads, mlp_ratio, qk_norm, norm, mlp) for _ in range(depth)
        )
        self.final_layer = FinalLayer(width, patch_size, in_chans, norm)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's initialisation: Xavier linears, N(0, 0.02) embeddings, zero adaLN and output."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for proj in (m for m in self.x_embedder.modules() if isinstance(m, nn.Conv2d)):
            nn.init.xavier_uniform_(
                proj.weight.view(proj.weight.shape[0], -1)
            )  # as a linear map of the patch
        nn.init.normal_(self.y_embedder.weight, std=0.02)
        for layer in (self.t_embedder.mlp[0], self.t_embedder.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
        # adaLN-Zero: every gate, shift and scale starts at 0, so each block is the identity and
        # the network outputs 0 until training moves them.
        for block in [*self.blocks, self.final_layer]:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def no_weight_decay(self) -> set[str]:
        return {"y_embedder.weight"}

    def unpatchify(self, x: Tensor) -> Tensor:
        """``(N, T, p * p * C)`` -> ``(N, C, H, W)``."""
        n, p, g, c = x.shape[0], self.patch_size, self.grid, self.in_chans
        x = x.reshape(n, g, g, p, p, c)  # (N, gh, gw, p, p, C)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(n, c, g * p, g * p)

    def forward_features(self, x: Tensor, t: Tensor, y: Tensor, depth: int | None = None) -> Tensor:
        """The tokens after the first `depth` blocks (all when None): ``(N, T, D)``, before the
        final layer. With a low noise level and the null class, a middle block's tokens are the
        denoiser's representation of the image (l-DAE, Chen et al. 2024; DDAE, Xiang et al. 2023)."""
        if depth is not None and not 0 <= depth <= len(self.blocks):
            raise ValueError(
                f"block depth {depth} is outside [0, {len(self.blocks)}] for this {len(self.blocks)}-block network."
            )
        return self._blocks(x, self._condition(t, y), depth)

    def _condition(self, t: Tensor, y: Tensor) -> Tensor:
        return self.t_embedder(t) + self.y_embedder(y)  # (N, D)

    def _blocks(self, x: Tensor, c: Tensor, depth: int | None = None) -> Tensor:
        tokens = self.x_embedder(x) + self.pos_embed  # (N, T, D)
        for block in self.blocks[:depth]:
            tokens = block(tokens, c)
        return tokens

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        c = self._condition(t, y)
        return self.unpatchify(self.final_layer(self._blocks(x, c), c))  # (N, C, H, W)
