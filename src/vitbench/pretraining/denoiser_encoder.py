"""The JiT/DiT denoiser read as an image classifier: ``model=jit_classifier``'s network (``model.net``).

It lives in pretraining/, not in classification/, because what it is for is the pretraining question
("does a denoiser pretrained without labels make a better classifier?", the study's row beside MAE):
it is denoising's network (:class:`~vitbench.denoising.dit.DiT`) given timm's classifier interface,
so that classification's :class:`~vitbench.classification.base.ImageClassifier` trains it (and its
linear probe, and ``vitbench-probe``, read it) like any other network; classification itself stays
free of denoising.

The network is DiT's, not ``model=vit``'s: patch embedding, (t, class) conditioning and adaLN-Zero
blocks, kept up to a middle block, then a head on the mean of that block's tokens. Its tensors keep
the names of a ``DenoiserModule``'s ``net`` (``x_embedder``, ``t_embedder``, ``y_embedder``,
``blocks.<i>``), so ``init_from=<a model=jit run>`` copies every kept tensor by name; the blocks
after the chosen one and the final (pixel) layer are not built, so they are reported as unused and
nothing of them is optimized.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vitbench.classification.networks import moved_keys
from vitbench.denoising.denoiser import check_network, to_pixels
from vitbench.denoising.dit import DiT, MlpKind, Norm
from vitbench.denoising.flow import FlowMatching

NET = "model.net"  # where the network's keys live, for the messages


class DenoiserInput(nn.Module):
    """Normalised images ``(N, C, H, W)`` -> what the denoiser saw: ``(z, t, y)``, the pixels in
    [-1, 1] (the datamodule's normalisation undone) at noise level ``noise_t`` (JiT's convention:
    t = 1 is the image, t = 0 pure noise; ``z = t x + (1 - t) eps``), ``t (N,)``, and the null class
    of classifier-free guidance ``y (N,)``, so no label reaches the network through its conditioning.

    With ``noise_t < 1`` noise is drawn afresh in training mode (DDAE's noisy fine-tuning, an
    augmentation) and from a fixed seed in eval mode, so validation and test see the same noise
    every epoch. Under linear probing this module follows the run's mode while the frozen network
    around it is in eval mode (``follows_run_mode``, :func:`~vitbench.classification.finetune.probe_modes`):
    the probe's training steps draw fresh noise too.

    Args:
        noise_t: Noise level, in [0, 1]; 1: the clean image.
        null_class: The label of no class (the network's ``num_classes``).
        data_mean, data_std: The datamodule's normalisation, one value per channel.
    """

    follows_run_mode = True

    def __init__(
        self, noise_t: float, null_class: int, data_mean: Sequence[float], data_std: Sequence[float]
    ) -> None:
        super().__init__()
        self.noise_t, self.null_class = float(noise_t), null_class
        self.register_buffer("data_mean", torch.tensor(data_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("data_std", torch.tensor(data_std).view(1, -1, 1, 1), persistent=False)

    # Eager under torch.compile (model.compile): inductor draws its own random numbers, not eager's, and
    # may fuse the pixel conversion; eager keeps the noise and the pixels exactly those of the eager run.
    @torch.compiler.disable
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, device = len(x), x.device
        z = to_pixels(x, self.data_mean, self.data_std)  # (N, C, H, W) in [-1, 1]
        t = torch.full((n,), self.noise_t, device=device)
        y = torch.full((n,), self.null_class, device=device, dtype=torch.long)
        if self.noise_t < 1.0:
            generator = None if self.training else torch.Generator(device).manual_seed(0)
            eps = torch.randn(z.shape, device=device, generator=generator)
            z = FlowMatching.noisy(z, eps, t)
        return z, t, y


class DenoiserEncoder(DiT):
    """DiT up to block ``blocks``, read as an image classifier with timm's interface: the image enters
    as the denoiser saw its data (:class:`DenoiserInput`), and the mean token after those blocks goes
    through a LayerNorm and a linear layer (``head.norm``, ``head.fc``; the fc starts at zero, so the
    first logits are uniform).

    The first ``blocks`` blocks and the embeddings are :class:`DiT`'s own, built by its constructor
    (same initialisation); ``final_layer`` is removed.

    Shapes: ``x (N, C, H, W)`` normalised images -> tokens ``(N, T, D)`` (:meth:`forward_features`)
    -> logits ``(N, num_classes)``.

    Args:
        blocks: Blocks kept (the features are the tokens after the last of them).
        noise_t, data_mean, data_std: :class:`DenoiserInput`'s.
        **dit: :class:`DiT`'s arguments but ``depth``; ``num_classes`` is also the head's size.
    """

    def __init__(
        self,
        blocks: int,
        noise_t: float = 1.0,
        data_mean: Sequence[float] = (0.5,),
        data_std: Sequence[float] = (0.5,),
        **dit,
    ) -> None:
        super().__init__(**dit, depth=blocks)
        del self.final_layer  # the denoiser's pixel output: nothing a classifier reads
        width = self.pos_embed.shape[-1]
        self.head = nn.Sequential(
            OrderedDict(norm=nn.LayerNorm(width, eps=1e-6), fc=nn.Linear(width, self.num_classes))
        )
        nn.init.zeros_(self.head.fc.weight)
        nn.init.zeros_(self.head.fc.bias)
        # No parameters and no saved buffers: the state dict stays the denoiser's names plus head.*.
        self.encoder_input = DenoiserInput(noise_t, self.num_classes, data_mean, data_std)

    def forward_features(self, x: Tensor) -> Tensor:
        """Normalised images ``(N, C, H, W)`` -> the tokens after the kept blocks ``(N, T, D)``: timm's
        signature (what linear probing and vitbench-probe call), not DiT's ``(z, t, y)``."""
        return super().forward_features(*self.encoder_input(x))

    def forward_head(self, tokens: Tensor, pre_logits: bool = False) -> Tensor:
        """``tokens (N, T, D)`` -> their mean ``(N, D)`` (``pre_logits``) or the logits ``(N, num_classes)``."""
        pooled = tokens.mean(1)
        return pooled if pre_logits else self.head(pooled)

    def get_classifier(self) -> nn.Module:
        return self.head

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer groups (for ``model.layer_decay``): the embeddings, then each block; the head
        falls in the last group."""
        return dict(stem=r"^x_embedder|^t_embedder|^y_embedder", blocks=r"^blocks\.(\d+)")

    def forward(self, x: Tensor) -> Tensor:
        """Normalised images ``(N, C, H, W)`` -> logits ``(N, num_classes)``."""
        return self.forward_head(self.forward_features(x))


def denoiser_encoder(
    num_classes: int = 10,
    img_size: int = 28,
    in_chans: int = 1,
    patch_size: int = 7,
    width: int = 128,
    depth: int = 6,
    num_heads: int = 4,
    mlp_ratio: float = 4.0,
    bottleneck_dim: int | None = None,
    qk_norm: bool = False,
    norm: Norm = "layer",
    mlp: MlpKind = "gelu",
    probe_block: int | None = None,
    noise_t: float = 1.0,
    data_mean: Sequence[float] = (0.5,),
    data_std: Sequence[float] = (0.5,),
) -> DenoiserEncoder:
    """A JiT/DiT denoiser's network as a classifier (:class:`DenoiserEncoder`), its keys checked.

    Why a middle block at low noise: a denoiser's representation is best there, not at its output,
    which is busy producing pixels (l-DAE, Chen, Liu, Xie & He 2024, arXiv 2401.14404: the first half
    of the blocks as the encoder; DDAE, Xiang et al. 2023, arXiv 2303.09769: linear-probe accuracy
    peaks mid-network and at low noise; its DiT probe reads layer 13 of 28 at step 121 of 1000,
    null class, tokens averaged).

    Why t = 1 (the clean image, nothing drawn) by default: a frozen probe needs the noise levels its
    denoiser was trained on (DDAE adds noise for that reason), but fine-tuning trains every kept
    weight, the time embedding included, to the one input it is given, and the test images are
    clean; noise at evaluation would only add variance that the other rows of the study (CNN, ViT,
    MAE) do not have. ``noise_t < 1``: see :class:`DenoiserInput`.

    Args:
        num_classes, img_size, in_chans: The data's (``${data.*}``).
        patch_size, width, depth, num_heads, mlp_ratio, bottleneck_dim, qk_norm, norm, mlp: the
            denoiser's network (:class:`DiT`); ``model=jit``'s values, so that its runs load.
        probe_block: Blocks kept, 1..depth: the features are the tokens after this block. None: the
            middle one, ``depth // 2``.
        noise_t: Noise level of the input, in [0, 1]; 1: the clean image.
        data_mean, data_std: The datamodule's normalisation (``${data.mean}``, ``${data.std}``).
    """
    check_network(img_size, patch_size, width, num_heads, norm, mlp, NET)
    block = max(1, depth // 2) if probe_block is None else probe_block
    if isinstance(block, bool) or not isinstance(block, int) or not 1 <= block <= depth:
        raise ValueError(
            f"{NET}.probe_block={probe_block!r} is out of range for the denoiser's {NET}.depth={depth}: "
            f"choose 1..{depth} (the tokens after that many blocks), or null for the middle one, "
            f"{max(1, depth // 2)} (l-DAE's and DDAE's choice)."
        )
    if isinstance(noise_t, bool) or not isinstance(noise_t, int | float) or not 0.0 <= noise_t <= 1.0:
        raise ValueError(
            f"{NET}.noise_t={noise_t!r} is outside [0, 1] (JiT's convention: 1 is the clean image, 0 pure "
            "noise); use 1.0 (clean input) or a low noise level such as 0.9."
        )
    return DenoiserEncoder(
        block,
        noise_t,
        data_mean,
        data_std,
        img_size=img_size,
        patch_size=patch_size,
        in_chans=in_chans,
        num_classes=num_classes,
        width=width,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        bottleneck_dim=bottleneck_dim,
        qk_norm=qk_norm,
        norm=norm,
        mlp=mlp,
    )


# Its keys sat directly under model (model.noise_t) before model.net: vitbench-train names their new place.
MOVED_KEYS = moved_keys(denoiser_encoder)
