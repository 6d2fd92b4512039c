"""The JiT/DiT denoiser fine-tuned as a classifier (``model=jit_classifier``): a denoiser as an encoder.

It lives in pretraining/, not in classification/, because what it is for is the pretraining question
("does a denoiser pretrained without labels make a better classifier?", the study's row beside MAE):
it joins denoising's network (:class:`~vitbench.denoising.dit.DiT`) to classification's training
logic (:class:`~vitbench.classification.base.ImageClassifier`), and pretraining is the task that
may use both; classification itself stays free of denoising.

The network is DiT's, not ``model=vit``'s: patch embedding, (t, class) conditioning and adaLN-Zero
blocks, kept up to a middle block, then a head on the mean of that block's tokens. Its tensors keep
the names of a ``DenoiserModule``'s ``net`` (``x_embedder``, ``t_embedder``, ``y_embedder``,
``blocks.<i>``), so ``init_from=<a model=jit run>`` copies every kept tensor by name; the blocks
after the chosen one and the final (pixel) layer are not built, so they are reported as unused and
nothing of them is optimized.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler

from vitbench.classification.base import ImageClassifier
from vitbench.classification.finetune import Finetune
from vitbench.denoising.denoiser import check_network, to_pixels
from vitbench.denoising.dit import DiT
from vitbench.denoising.flow import FlowMatching


class DenoiserEncoder(DiT):
    """DiT up to block ``blocks``, read as an image classifier: the mean token after those blocks,
    a LayerNorm and a linear layer (``head.norm``, ``head.fc``; the fc starts at zero, so the
    first logits are uniform).

    The first ``blocks`` blocks and the embeddings are :class:`DiT`'s own, built by its constructor
    (same initialisation); ``final_layer`` is removed. ``forward_features(x, t, y)`` is DiT's.

    Shapes: ``x (N, C, H, W)`` in [-1, 1], ``t (N,)``, ``y (N,)`` -> logits ``(N, num_classes)``.

    Args:
        blocks: Blocks kept (the features are the tokens after the last of them).
        **dit: :class:`DiT`'s arguments but ``depth``; ``num_classes`` is also the head's size.
    """

    def __init__(self, blocks: int, **dit) -> None:
        super().__init__(**dit, depth=blocks)
        del self.final_layer  # the denoiser's pixel output: nothing a classifier reads
        width = self.pos_embed.shape[-1]
        self.head = nn.Sequential(
            OrderedDict(norm=nn.LayerNorm(width, eps=1e-6), fc=nn.Linear(width, self.num_classes))
        )
        nn.init.zeros_(self.head.fc.weight)
        nn.init.zeros_(self.head.fc.bias)

    def forward_head(self, tokens: Tensor, pre_logits: bool = False) -> Tensor:
        """``tokens (N, T, D)`` -> their mean ``(N, D)`` (``pre_logits``) or the logits ``(N, num_classes)``."""
        pooled = tokens.mean(1)
        return pooled if pre_logits else self.head(pooled)

    def get_classifier(self) -> nn.Module:
        return self.head

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer groups (for ``model.optimizer.layer_decay``): the embeddings, then each block;
        the head falls in the last group."""
        return dict(stem=r"^x_embedder|^t_embedder|^y_embedder", blocks=r"^blocks\.(\d+)")

    def forward(self, x: Tensor, t: Tensor, y: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x, t, y))


class DenoiserClassifier(ImageClassifier):
    """A JiT/DiT denoiser's network fine-tuned as a classifier (:class:`DenoiserEncoder`).

    The image enters as the denoiser saw its data: pixels in [-1, 1] (the datamodule's
    normalisation undone), at the fixed noise level ``noise_t`` (JiT's convention: t = 1 is the
    image, t = 0 pure noise; ``z = t x + (1 - t) eps``), with the null class of classifier-free
    guidance as its label (``num_classes``), so no label reaches the network through its
    conditioning. The features are the tokens after block ``probe_block``, averaged.

    Why a middle block at low noise: a denoiser's representation is best there, not at its output,
    which is busy producing pixels (l-DAE, Chen, Liu, Xie & He 2024, arXiv 2401.14404: the first half
    of the blocks as the encoder; DDAE, Xiang et al. 2023, arXiv 2303.09769: linear-probe accuracy
    peaks mid-network and at low noise; its DiT probe reads layer 13 of 28 at step 121 of 1000,
    null class, tokens averaged).

    Why t = 1 (the clean image, nothing drawn) by default: a frozen probe needs the noise levels its
    denoiser was trained on (DDAE adds noise for that reason), but fine-tuning trains every kept
    weight, the time embedding included, to the one input it is given, and the test images are
    clean; noise at evaluation would only add variance that the other rows of the study (CNN, ViT,
    MAE) do not have. With ``noise_t < 1`` noise is drawn afresh at every training step (DDAE's
    noisy fine-tuning, an augmentation) and from a fixed seed at evaluation, so validation and test
    see the same noise every epoch.

    Args:
        num_classes, img_size, in_chans: The data's (``${data.*}``).
        patch_size, width, depth, num_heads, mlp_ratio, bottleneck_dim, qk_norm, norm, mlp: the
            denoiser's network (:class:`DiT`); ``model=jit``'s values, so that its runs load.
        probe_block: Blocks kept, 1..depth: the features are the tokens after this block. None: the
            middle one, ``depth // 2``.
        noise_t: Noise level of the input, in [0, 1]; 1: the clean image.
        data_mean, data_std: The datamodule's normalisation (``${data.mean}``, ``${data.std}``).
        finetune: ``full`` (every kept weight trains) or ``linear`` (only ``head`` on the frozen
            blocks: the study's linear probe of the denoiser; :meth:`ImageClassifier.set_finetune`).
        fused_attn, compile: See :meth:`ImageClassifier.set_speed_options`.
        optimizer, scheduler, label_smoothing: See :class:`ImageClassifier`.
    """

    def __init__(
        self, num_classes: int = 10, img_size: int = 28, in_chans: int = 1, patch_size: int = 7, width: int = 128,
        depth: int = 6, num_heads: int = 4, mlp_ratio: float = 4.0, bottleneck_dim: int | None = None,
        qk_norm: bool = False, norm: str = "layer", mlp: str = "gelu", probe_block: int | None = None,
        noise_t: float = 1.0, data_mean: Sequence[float] = (0.5,), data_std: Sequence[float] = (0.5,),
        finetune: Finetune = "full", fused_attn: bool = True, compile: bool = False,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None, label_smoothing: float = 0.0,
    ) -> None:  # fmt: skip
        check_network(img_size, patch_size, width, num_heads, norm, mlp)
        block = max(1, depth // 2) if probe_block is None else probe_block
        if isinstance(block, bool) or not isinstance(block, int) or not 1 <= block <= depth:
            raise ValueError(
                f"model.probe_block={probe_block!r} is out of range for the denoiser's model.depth={depth}: "
                f"choose 1..{depth} (the tokens after that many blocks), or null for the middle one, "
                f"{max(1, depth // 2)} (l-DAE's and DDAE's choice)."
            )
        if isinstance(noise_t, bool) or not isinstance(noise_t, int | float) or not 0.0 <= noise_t <= 1.0:
            raise ValueError(
                f"model.noise_t={noise_t!r} is outside [0, 1] (JiT's convention: 1 is the clean image, 0 pure "
                "noise); use 1.0 (clean input) or a low noise level such as 0.9."
            )
        net = dict(
            _target_=f"{DenoiserEncoder.__module__}.{DenoiserEncoder.__qualname__}", blocks=block, img_size=img_size,
            patch_size=patch_size, in_chans=in_chans, num_classes=num_classes, width=width, num_heads=num_heads,
            mlp_ratio=mlp_ratio, bottleneck_dim=bottleneck_dim, qk_norm=qk_norm, norm=norm, mlp=mlp,
        )  # fmt: skip
        super().__init__(
            net,
            optimizer,
            scheduler,
            label_smoothing,
            finetune=finetune,
            compile=compile,
            fused_attn=fused_attn,
        )
        del self.hparams["net"]  # this module's own arguments rebuild it (load_from_checkpoint)
        self.probe_block, self.noise_t = block, float(noise_t)
        self.register_buffer("data_mean", torch.tensor(data_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("data_std", torch.tensor(data_std).view(1, -1, 1, 1), persistent=False)

    def encoder_input(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised images ``(N, C, H, W)`` -> the network's ``(z, t, y)``: pixels in [-1, 1] at
        level ``noise_t``, ``t (N,)`` and the null class ``y (N,)``."""
        n, device = len(x), x.device
        z = to_pixels(x, self.data_mean, self.data_std)
        t = torch.full((n,), self.noise_t, device=device)
        y = torch.full((n,), self.num_classes, device=device, dtype=torch.long)
        if self.noise_t < 1.0:
            generator = None if self.training else torch.Generator(device).manual_seed(0)
            eps = torch.randn(z.shape, device=device, generator=generator)
            z = FlowMatching.noisy(z, eps, t)
        return z, t, y

    def forward(self, x: Tensor) -> Tensor:
        """Normalised images ``(N, C, H, W)`` -> logits ``(N, num_classes)``."""
        z, t, y = self.encoder_input(x)
        if self.finetune == "linear":  # the frozen blocks without gradients, then the head
            with self.backbone_context():
                pooled = self.net.forward_head(self.net.forward_features(z, t, y), pre_logits=True)
            return self.net.head(pooled)
        return self.net(z, t, y)
