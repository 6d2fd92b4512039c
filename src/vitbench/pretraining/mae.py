"""MAE: a masked autoencoder whose encoder is model=vit's timm VisionTransformer."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch
from lightly.models.modules.masked_vision_transformer_decoder_timm import MaskedVisionTransformerDecoderTIMM
from lightly.models.modules.masked_vision_transformer_timm import MaskedVisionTransformerTIMM
from lightly.models.utils import patchify, repeat_token, set_at_index, unpatchify
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler

from vitbench.classification.vit import vit_arguments
from vitbench.pretraining.frozen_features import Setting, probe_data, probe_encoders
from vitbench.pretraining.masking import (
    check_mask_ratio,
    mask_generator,
    masked_mse,
    patch_targets,
    random_masking,
)
from vitbench.pretraining.task import PRETRAINING
from vitbench.run.task import EVAL_SEED, LossTaskModule

log = logging.getLogger(__name__)


class MAEModule(LossTaskModule):
    """MAE (He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners", arXiv 2111.06377).

    ``self.net`` is exactly ``model=vit``'s ``VisionTransformer``, built by the same
    :func:`~vitbench.classification.vit.vit_arguments` from the same keys but without a head
    (``num_classes=0``), so ``init_from=<this run>`` into ``model=vit`` or ``model=deit`` finds every
    encoder tensor under its own ``net.*`` name; only the classifier's head is new. lightly's
    ``MaskedVisionTransformerTIMM`` runs that ViT on the visible tokens only (class token plus
    ``round((1 - mask_ratio) N)`` patches: MAE's saving) and its ``MaskedVisionTransformerDecoderTIMM``
    (timm ``Block``s, fixed sin-cos positions) reads them back beside mask tokens. The loss is the
    MSE on the masked patches against per-patch normalised pixels (:mod:`~vitbench.pretraining.masking`).

    Initialisation is MAE's (lightly's): Xavier linears, the patch embedding as a linear map, a fixed
    2-D sin-cos position table in the encoder (``net.pos_embed``, not trained here; a classifier
    started from it trains it). Masks: training ones from a generator seeded by (run seed, epoch,
    batch, rank), so a resumed run masks as the unbroken one; validation and test ones by the batch
    index, the same every epoch. At test end the encoder is probed (:mod:`~vitbench.pretraining.frozen_features`,
    the mean of its patch tokens on whole images): ``test/knn_acc`` and ``test/linear_acc``.

    Args:
        img_size, in_chans, patch_size, embed_dim, depth, num_heads, mlp_ratio, drop_path_rate,
            global_pool: The encoder, as ``model=vit``'s network (:func:`~vitbench.classification.vit.vit`).
        decoder_dim, decoder_depth, decoder_heads: The decoder's width, blocks and heads (MAE:
            512, 8, 16 for ViT-L; light is enough, its depth barely changes fine-tuning).
        mask_ratio: Fraction of patches hidden from the encoder, in [0, 1) (MAE: 0.75).
        norm_pix_loss: Predict each patch normalised by its own mean and variance (MAE's better target).
        probe_train_size: Training images the test-end probe uses (the first ones); None: all.
        fused_attn, compile: See :meth:`TaskModule.set_speed_options` (also applied to the decoder).
        optimizer, scheduler: See :class:`TaskModule`.
    """

    task = PRETRAINING
    hparams_ignore = ("optimizer", "scheduler")

    def __init__(
        self, img_size: int = 28, in_chans: int = 1, patch_size: int = 7, embed_dim: int = 128, depth: int = 6,
        num_heads: int = 4, mlp_ratio: float = 2.0, drop_path_rate: float = 0.0, global_pool: str = "token",
        decoder_dim: int = 64, decoder_depth: int = 2, decoder_heads: int = 4, mask_ratio: float = 0.75,
        norm_pix_loss: bool = True, probe_train_size: int | None = None, fused_attn: bool = True,
        compile: bool = False, optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(optimizer, scheduler)
        args = vit_arguments(
            img_size, patch_size=patch_size, in_chans=in_chans, num_classes=0, embed_dim=embed_dim, depth=depth,
            num_heads=num_heads, mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate,
        )  # fmt: skip
        if global_pool not in ("token", "avg"):
            raise ValueError(
                f"model.global_pool={global_pool!r} must be token (class token) or avg (no class token)."
            )
        self.num_patches = (img_size // patch_size) ** 2
        check_mask_ratio(mask_ratio, self.num_patches)
        check_decoder(decoder_dim, decoder_depth, decoder_heads)
        if probe_train_size is not None and probe_train_size < 1:
            raise ValueError(
                f"model.probe_train_size={probe_train_size} must be >= 1, or null for every training image."
            )
        self.save_hyperparameters(ignore=list(self.hparams_ignore), logger=False)  # train.py logs the config
        self.patch_size, self.in_chans, self.mask_ratio = patch_size, in_chans, mask_ratio
        self.norm_pix_loss, self.probe_train_size = norm_pix_loss, probe_train_size

        self.net = VisionTransformer(**args, global_pool=global_pool, class_token=global_pool == "token")
        # Not a submodule: its only weights are self.net's (its own mask token is unused: MAE's
        # encoder drops the masked tokens instead), so the checkpoint holds them once, as net.*.
        self.__dict__["encoder"] = MaskedVisionTransformerTIMM(vit=self.net)
        self.prefix = self.net.num_prefix_tokens  # the class token, or none with global_pool=avg
        self.decoder_embed = nn.Linear(embed_dim, decoder_dim)
        self.decoder = MaskedVisionTransformerDecoderTIMM(
            self.num_patches, decoder_dim, decoder_depth, decoder_heads, num_prefix_tokens=self.prefix
        )
        self.decoder_pred = nn.Linear(decoder_dim, patch_size**2 * in_chans)
        self.set_speed_options(compile=compile, fused_attn=fused_attn)
        for module in self.decoder.modules():
            if hasattr(module, "fused_attn"):
                module.fused_attn = fused_attn
        self._probe: dict[str, Any] = {}

    def trained_modules(self) -> list[nn.Module]:
        return [self.net, self.decoder_embed, self.decoder, self.decoder_pred]

    def compiled_modules(self) -> list[nn.Module]:
        # lightly's encode() calls the ViT's parts, and its blocks as one Sequential; the decoder is called.
        return [self.net.blocks, self.decoder]

    def reconstruct(self, x: Tensor, idx_keep: Tensor) -> Tensor:
        """Encode the kept patches ``idx_keep (B, K)`` of images ``x (B, C, H, W)`` and decode every
        patch: ``(B, N, p * p * C)``, in the space of :func:`~vitbench.pretraining.masking.patch_targets`."""
        b = len(x)
        prefix = torch.arange(self.prefix, device=x.device).expand(b, -1)  # (B, P): kept always
        keep = torch.cat([prefix, idx_keep + self.prefix], dim=1)  # (B, P + K), token positions
        tokens = self.decoder_embed(self.encoder.encode(x, idx_keep=keep))  # (B, P + K, Dd)
        full = repeat_token(self.decoder.mask_token, (b, self.prefix + self.num_patches))  # (B, P + N, Dd)
        full = set_at_index(full, keep, tokens.type_as(full))
        return self.decoder_pred(self.decoder(full)[:, self.prefix :])  # (B, N, p*p*C)

    def masked_forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Mask ``x (B, C, H, W)`` at random (:func:`random_masking` with ``generator``) and
        reconstruct it: predictions ``(B, N, p * p * C)`` and the mask ``(B, N)``, 1 = masked."""
        idx_keep, mask = random_masking(len(x), self.num_patches, self.mask_ratio, generator, x.device)
        return self.reconstruct(x, idx_keep), mask

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction ``(B, N, p * p * C)`` of ``x (B, C, H, W)`` under the first evaluation
        mask: what one training step computes, so FLOP counts and inference speed are the training
        forward's."""
        return self.masked_forward(x, mask_generator(EVAL_SEED, 0))[0]

    def training_loss(
        self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """MAE's loss on normalised images ``x (B, C, H, W)`` (labels ``y`` are not used); returns
        ``(loss, predictions (B, N, p * p * C))``."""
        pred, mask = self.masked_forward(x, generator)
        return masked_mse(pred, patch_targets(x, self.patch_size, self.norm_pix_loss), mask), pred

    def features(self, x: Tensor) -> Tensor:
        """The encoder's representation of whole images ``x (B, C, H, W)``: the mean of its patch
        tokens after the final norm, no mask ``(B, D)``."""
        return self.net.forward_features(x)[:, self.prefix :].mean(dim=1)

    @torch.no_grad()
    def reconstruction_images(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """For pictures: ``x (B, C, H, W)`` masked by ``generator``; returns the visible patches (masked
        ones 0), the reconstruction (visible patches plus the predicted masked ones) and the mask as
        images ``(B, C, H, W)`` (mask: 1 on masked pixels). A normalised-pixel prediction is put back
        on each patch's own mean and variance, as MAE's figures do."""
        pred, mask = self.masked_forward(x, generator)
        patches = patchify(x, self.patch_size)  # (B, N, P)
        if self.norm_pix_loss:
            pred = pred * (patches.var(-1, keepdim=True) + 1e-6).sqrt() + patches.mean(-1, keepdim=True)
        m = mask.unsqueeze(-1).expand_as(patches)  # (B, N, P)

        def image(p: Tensor) -> Tensor:
            return unpatchify(p, self.patch_size, self.in_chans)

        return image(patches * (1 - m)), image(patches * (1 - m) + pred * m), image(m)

    def step_loss(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> tuple[Tensor, Tensor]:
        # Masks keyed by (run seed, epoch, batch, rank): a resumed run masks as the unbroken one did.
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        generator = mask_generator(seed, self.current_epoch, batch_idx, self.global_rank)
        return self.training_loss(batch[0], generator=generator)

    def _eval_loss(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self.training_loss(batch[0], generator=mask_generator(EVAL_SEED, batch_idx))[0]

    def on_test_epoch_end(self) -> None:
        # The encoder of the tested (best) checkpoint, probed on the run's own data.
        data = probe_data(self.trainer.datamodule, self.probe_train_size)
        setting = Setting({}, lambda x, generator: self.features(x), "MAE encoder: mean of the patch tokens")
        self._probe = probe_encoders([setting], data, self.device)
        self.log_dict({"test/knn_acc": self._probe["knn_acc"], "test/linear_acc": self._probe["linear_acc"]})

    def run_record(self, metrics: dict[str, float]) -> dict[str, Any]:
        trainer = self._trainer
        batch = getattr(trainer.datamodule, "batch_size", None) if trainer is not None else None
        seen = (
            trainer.global_step * trainer.accumulate_grad_batches * trainer.world_size * batch
            if batch
            else None
        )
        decoder = sum(p.numel() for m in self.trained_modules()[1:] for p in m.parameters())
        # The probe's figures as it computed them (the logged ones went through a float32 tensor).
        probed = {key: self._probe[key] for key in ("knn_acc", "linear_acc") if key in self._probe}
        return {
            **super().run_record(metrics), **probed, "mask_ratio": self.mask_ratio, "decoder_params": decoder,
            "train_images_seen": seen, "probe": self._probe.get("probe"),
        }  # fmt: skip


def check_decoder(width: int, depth: int, heads: int) -> None:
    """Raise ValueError unless the decoder has a block and its heads divide its width."""
    if depth < 1:
        raise ValueError(
            f"model.decoder_depth={depth} must be >= 1 (MAE's light decoders have 1 to 8 blocks)."
        )
    if heads >= 1 and width % heads == 0:
        return
    near = sorted(
        (d for d in range(1, min(width, 64) + 1) if width % d == 0), key=lambda d: (abs(d - heads), d)
    )[:4]
    raise ValueError(
        f"model.decoder_dim={width} is not divisible by model.decoder_heads={heads}; choose model.decoder_heads "
        f"among the divisors of {width} (e.g. {', '.join(map(str, sorted(near)))}), or set model.decoder_dim to a "
        f"multiple of {heads} (e.g. {max(heads, 1) * max(1, round(width / max(heads, 1)))})."
    )
