"""A class-conditional denoising generator on pixels: JiT's flow matching on DiT's network."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from timm.utils import ModelEmaV3
from torch import Tensor
from torch.optim.lr_scheduler import LRScheduler

from vitbench.denoising.dit import DiT
from vitbench.denoising.fid import FeatureCNN, frechet_distance, load_feature_cnn, sample_accuracy
from vitbench.denoising.flow import FlowMatching, Sampler
from vitbench.denoising.sample_files import from_uint8, save_samples, to_uint8
from vitbench.denoising.task import DENOISING
from vitbench.run.checks import check_num_heads, check_patch_size
from vitbench.run.task import EVAL_SEED, LossTaskModule

log = logging.getLogger(__name__)


def check_network(
    img_size: int, patch_size: int, width: int, num_heads: int, norm: str, mlp: str, key: str = "model"
) -> None:
    """ValueError naming the first of :class:`DiT`'s shape arguments that cannot work; ``key`` is where
    they live (``model``; the denoiser read as a classifier: ``model.net``)."""
    check_patch_size(img_size, patch_size, key)
    check_num_heads(num_heads, width, "width", key)
    for name, value, choices in (("norm", norm, ("layer", "rms")), ("mlp", mlp, ("gelu", "swiglu"))):
        if value not in choices:
            raise ValueError(f"{key}.{name}={value!r} is not one of {', '.join(choices)}.")
    if width % 4:
        raise ValueError(
            f"{key}.width={width} must be a multiple of 4 (the 2-D sin-cos position table); e.g. 128."
        )


def to_pixels(x: Tensor, data_mean: Tensor, data_std: Tensor) -> Tensor:
    """Datamodule-normalised images ``(N, C, H, W)`` -> pixels in [-1, 1] (JiT's range), given the
    normalisation's mean and std ``(1, C, 1, 1)``: what a denoiser sees, and a classifier built on its network."""
    return (x * data_std + data_mean) * 2 - 1


class DenoiserModule(LossTaskModule):
    """DiT and JiT: one module, two configs (``model=dit``, ``model=jit``).

    Training (JiT, Li & He 2025, arXiv 2511.13720): ``z_t = t x + (1 - t) eps`` with t
    logit-normal, the network's output read as x, v or eps (:class:`FlowMatching`), labels
    dropped to the null class with probability ``label_drop`` (so one network is both the
    conditional and the unconditional model of classifier-free guidance). EMA weights (timm's
    ``ModelEmaV3``, with its warm-up) are updated every step, saved in the checkpoint, and are
    what validation, test and sampling use.

    Pixels: the datamodule hands over images normalised with ``data_mean``/``data_std``;
    :meth:`pixels` maps them to [-1, 1] (JiT's range), here and only here.

    Test: the test loss, then ``n_samples`` images (classes in turn) sampled with
    :class:`Sampler`, saved as ``samples.pt``/``samples.png`` in the run folder and logged to
    W&B; with a feature CNN, ``test/fid`` against as many real test images, ``test/fid_floor``
    (real test against real train) and ``test/sample_acc`` (vitbench.denoising.fid).

    Args:
        num_classes, img_size, in_chans: The data's (``${data.*}``).
        patch_size, width, depth, num_heads, mlp_ratio, bottleneck_dim, qk_norm, norm, mlp: :class:`DiT`.
        prediction, loss_space, t_mu, t_sigma, t_eps: :class:`FlowMatching`.
        label_drop: Probability that a training label becomes the null class (DiT, JiT: 0.1);
            1: every label is the null class, an unconditional denoiser that never sees a label
            (pretraining an encoder on unlabelled images).
        ema_decay: Final EMA decay; the warm-up (``1 - (1 + step) ** -2/3``) starts lower.
        sampling_steps, cfg_scale, cfg_interval: :class:`Sampler`.
        n_samples: Images generated at test; FID is taken at this n.
        sample_batch_size: Images sampled per forward batch.
        feature_cnn: A ``model=cnn`` checkpoint of the same data for FID; None: no FID (after
            ``load_from_checkpoint``, sampling only).
        data_mean, data_std: The datamodule's normalisation; dataset: its name, for messages.
        fused_attn, compile: See :meth:`TaskModule.set_speed_options`.
        optimizer, scheduler: See :class:`TaskModule`.
    """

    task = DENOISING
    hparams_ignore = ("optimizer", "scheduler", "feature_cnn")

    def __init__(
        self, num_classes: int = 10, img_size: int = 28, in_chans: int = 1, patch_size: int = 7, width: int = 128,
        depth: int = 6, num_heads: int = 4, mlp_ratio: float = 4.0, bottleneck_dim: int | None = None,
        qk_norm: bool = False, norm: str = "layer", mlp: str = "gelu", prediction: str = "x", loss_space: str = "v",
        t_mu: float = -0.8, t_sigma: float = 0.8, t_eps: float = 0.05, label_drop: float = 0.1,
        ema_decay: float = 0.9999, sampling_steps: int = 20, cfg_scale: float = 1.0,
        cfg_interval: Sequence[float] = (0.0, 1.0), n_samples: int = 1000, sample_batch_size: int = 500,
        feature_cnn: str | None = None, data_mean: Sequence[float] = (0.5,), data_std: Sequence[float] = (0.5,),
        dataset: str = "fashion_mnist", fused_attn: bool = True, compile: bool = False,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(optimizer, scheduler)
        check_network(img_size, patch_size, width, num_heads, norm, mlp)
        if not 0 <= label_drop <= 1:
            raise ValueError(
                f"model.label_drop={label_drop} must lie in [0, 1]; 0.1 as DiT and JiT, 1 for an unconditional denoiser."
            )
        if not 0 <= ema_decay < 1:
            raise ValueError(f"model.ema_decay={ema_decay} must lie in [0, 1); 0.999 to 0.9999 are usual.")
        if n_samples < num_classes or sample_batch_size < 1:
            raise ValueError(
                f"model.n_samples={n_samples} must be >= the {num_classes} classes and model.sample_batch_size="
                f"{sample_batch_size} >= 1."
            )
        self.save_hyperparameters(
            ignore=list(self.hparams_ignore), logger=False
        )  # train.py logs the whole config once
        self.flow = FlowMatching(prediction, loss_space, t_mu, t_sigma, t_eps)
        self.sampler = Sampler(sampling_steps, cfg_scale, tuple(cfg_interval))
        self.num_classes, self.label_drop = num_classes, label_drop
        self.n_samples, self.sample_batch_size = n_samples, sample_batch_size
        self.image_shape = (in_chans, img_size, img_size)
        self.register_buffer("data_mean", torch.tensor(data_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("data_std", torch.tensor(data_std).view(1, -1, 1, 1), persistent=False)
        self.__dict__["feature_cnn"] = (
            load_feature_cnn(feature_cnn, dataset, img_size, in_chans, num_classes) if feature_cnn else None
        )  # not a submodule: never optimized, never in the checkpoint (as DeiT's teacher)

        self.net = DiT(img_size, patch_size, in_chans, num_classes, width, depth, num_heads, mlp_ratio,
                       bottleneck_dim, qk_norm, norm, mlp)  # fmt: skip
        self.set_speed_options(compile=compile, fused_attn=fused_attn)
        self.ema = ModelEmaV3(self.net, decay=ema_decay, use_warmup=True)
        self.ema.requires_grad_(False)  # moved by update(), never by the optimizer (and not "trainable")
        self._real: list[Tensor] = []

    def pixels(self, x: Tensor) -> Tensor:
        """Datamodule-normalised images -> pixels in [-1, 1] ``(N, C, H, W)``."""
        return to_pixels(x, self.data_mean, self.data_std)

    def forward(self, x: Tensor, t: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        """One evaluation of the training network: ``z (N, C, H, W)``, ``t (N,)`` (default 0.5),
        ``y (N,)`` (default the null class) -> output ``(N, C, H, W)``."""
        n = len(x)
        t = torch.full((n,), 0.5, device=x.device) if t is None else t
        y = torch.full((n,), self.num_classes, device=x.device, dtype=torch.long) if y is None else y
        return self.net(x, t, y)

    def training_loss(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Flow-matching loss of one batch (normalised images ``x``, labels ``y (N,)``); returns ``(loss, output)``."""
        if y.ndim != 1:
            raise ValueError("denoising needs hard labels: set data.mixup_alpha=0 and data.cutmix_alpha=0.")
        x = self.pixels(x)
        t = self.flow.sample_t(len(x), x.device)
        eps = torch.randn_like(x)
        # Label dropout: the null class teaches the unconditional model that CFG contrasts with.
        y = torch.where(torch.rand(len(y), device=y.device) < self.label_drop, self.num_classes, y)
        z = self.flow.noisy(x, eps, t)
        out = self.net(z, t, y)
        return self.flow.loss(out, x, eps, z, t), out

    def after_optimizer_step(self) -> None:
        self.ema.update(self.net, step=self.global_step)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        # The EMA moves inside the step, before any callback's on_train_batch_end: a checkpoint
        # saved at this step then holds the EMA of this step, and a resumed run continues it exactly.
        super().optimizer_step(*args, **kwargs)
        self.after_optimizer_step()

    def _eval_loss(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """The EMA network's loss with t and noise fixed by the batch index: the same draws every epoch."""
        x, y = self.pixels(batch[0]), batch[1]
        g = torch.Generator(x.device).manual_seed(EVAL_SEED + batch_idx)
        t = self.flow.sample_t(len(x), x.device, generator=g)
        eps = torch.randn(x.shape, device=x.device, generator=g)
        z = self.flow.noisy(x, eps, t)
        return self.flow.loss(self.ema.module(z, t, y), x, eps, z, t)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = super().test_step(batch, batch_idx)
        if sum(len(r) for r in self._real) < self.n_samples:  # real test images for FID, as pixels
            self._real.append(self.pixels(batch[0]))
        return loss

    @torch.no_grad()
    def sample(self, labels: Tensor, steps: int | None = None, cfg_scale: float | None = None,
               cfg_interval: Sequence[float] | None = None, seed: int = 0) -> Tensor:  # fmt: skip
        """Images in [-1, 1] ``(N, C, H, W)`` for ``labels (N,)``, by the EMA network; the noise
        depends on ``seed`` only (drawn on the CPU), so a run's samples repeat on any device."""
        s = self.sampler
        sampler = Sampler(s.steps if steps is None else steps, s.cfg_scale if cfg_scale is None else cfg_scale,
                          tuple(cfg_interval or s.cfg_interval))  # fmt: skip
        noise = torch.randn((len(labels), *self.image_shape), generator=torch.Generator().manual_seed(seed))
        net = self.ema.module.eval()
        out = [
            sampler.sample(net, self.flow, z.to(self.device), y.to(self.device), self.num_classes)
            for z, y in zip(
                noise.split(self.sample_batch_size), labels.split(self.sample_batch_size), strict=True
            )
        ]
        return torch.cat(out)

    def on_test_epoch_end(self) -> None:
        labels = torch.arange(self.n_samples) % self.num_classes
        start = time.perf_counter()
        images = self.sample(labels, seed=0)
        self._sampling_images_per_s = len(images) / (time.perf_counter() - start)
        if self.trainer.is_global_zero:
            self._save_samples(images, labels)
        features: FeatureCNN | None = self.__dict__["feature_cnn"]
        real, self._real = torch.cat(self._real)[: self.n_samples], []
        if features is None:
            log.warning("No feature CNN (model.feature_cnn): samples written, no FID or sample accuracy.")
            return
        features.to(self.device)
        n = min(len(real), len(images))
        train = from_uint8(self.trainer.datamodule.data_train.images[:n]).to(self.device)
        fid, floor = (
            frechet_distance(features, real[:n], images[:n]),
            frechet_distance(features, real[:n], train),
        )
        self.log_dict(
            {
                "test/fid": fid,
                "test/fid_floor": floor,
                "test/sample_acc": sample_accuracy(features, images, labels),
            }
        )
        log.info("FID (vitbench-CNN features, n=%d): %.2f, floor %.2f", n, fid, floor)

    def _save_samples(self, images: Tensor, labels: Tensor) -> None:
        import pytorch_lightning as pl

        _, png = save_samples(to_uint8(images), labels, Path(self.trainer.default_root_dir))
        for logger in self.loggers:
            if isinstance(logger, pl.loggers.WandbLogger):
                logger.log_image("samples", [str(png)], caption=["one row per class"])

    def run_record(self, metrics: dict[str, float]) -> dict[str, Any]:
        return {
            **super().run_record(metrics), "n_samples": self.n_samples, "sampling_steps": self.sampler.steps,
            "cfg_scale": self.sampler.cfg_scale, "sampling_images_per_s": getattr(self, "_sampling_images_per_s", None),
        }  # fmt: skip
