"""The one LightningModule that every vitbench variant shares.

A variant subclasses :class:`ImageClassifier`, checks its constructor arguments, sets
``self.net`` to a timm model whose ``forward(x)`` maps ``(B, C, H, W)`` images to
``(B, num_classes)`` logits and passes its speed switches to :meth:`~ImageClassifier.set_speed_options`.
Steps, loss, metrics and optimisation live here only.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from timm.optim import param_groups_weight_decay
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

DEFAULT_LR = 1e-3
DEFAULT_WEIGHT_DECAY = 0.05


def accuracy_metrics(num_classes: int, prefix: str, top5: bool = True) -> MetricCollection:
    """Top-1 (and top-5 when there are at least 5 classes) accuracy as fractions.

    ``average="micro"`` makes this the plain fraction of correct images; torchmetrics'
    default (macro) would average per-class recalls instead.
    """
    metrics: dict[str, MulticlassAccuracy] = {
        "acc": MulticlassAccuracy(num_classes=num_classes, top_k=1, average="micro")
    }
    if top5 and num_classes >= 5:
        metrics["acc_top5"] = MulticlassAccuracy(num_classes=num_classes, top_k=5, average="micro")
    # compute_groups would try to share state between top-1 and top-5; keep them apart.
    return MetricCollection(metrics, prefix=prefix, compute_groups=False)


class ImageClassifier(pl.LightningModule):
    """Shared training logic: cross-entropy, accuracy metrics, AdamW with split weight decay.

    Batches are ``(x, y)`` with ``x: (B, C, H, W)`` floats and ``y`` either class indices
    ``(B,)`` int64 or soft targets ``(B, K)`` float (mixup/cutmix); ``F.cross_entropy``
    takes both. Logged keys: ``train/loss`` (per step), ``train/acc``, ``val/loss``,
    ``val/acc``, ``val/acc_top5``, ``val/acc_best``, ``test/loss``, ``test/acc``,
    ``test/acc_top5`` (per epoch), accuracies as fractions.

    Subclasses change behaviour through three seams instead of copying a step method:
    ``forward`` (logits used for evaluation), ``training_loss`` (the training objective) and
    ``_eval_step`` (evaluation of one batch); and, when they call parts of ``self.net`` rather
    than ``self.net(x)``, ``compiled_modules`` (what ``compile=True`` compiles).

    Args:
        num_classes: Number of classes K.
        optimizer: Partial optimizer taking the parameter groups, e.g. Hydra's
            ``functools.partial(torch.optim.AdamW, lr=..., weight_decay=...)``. Its
            ``weight_decay`` keyword is applied to weights only (not to norms, biases,
            position embeddings or tokens). Default AdamW(lr=1e-3, weight_decay=0.05).
        scheduler: Partial ``(optimizer, total_steps) -> LRScheduler`` stepped every
            optimizer step, e.g. :func:`vitbench.models.warmup_cosine`. Default: constant lr.
        label_smoothing: Label smoothing of the cross-entropy, in [0, 1).
    """

    net: nn.Module
    # Init arguments kept out of the checkpoint's hyperparameters; a subclass holding an
    # nn.Module argument (a DeiT teacher) extends this tuple.
    hparams_ignore: tuple[str, ...] = ("optimizer", "scheduler")

    def __init__(
        self,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"model.label_smoothing={label_smoothing} must lie in [0, 1); 0.1 is usual.")
        # Lightning walks up the __init__ frames, so this also records every argument of the
        # subclass that called us (tested in tests/models/test_base.py).
        self.save_hyperparameters(ignore=list(self.hparams_ignore))
        self.num_classes = num_classes
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.label_smoothing = label_smoothing

        self.train_metrics = accuracy_metrics(num_classes, "train/", top5=False)
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")
        self.val_acc_best = MaxMetric()
        # Saved in checkpoints (torchmetrics states are not, by default), so a resumed run keeps its best.
        self.val_acc_best.persistent(True)
        self._rng_to_restore: dict | None = None
        # Off until the subclass calls set_speed_options with its switches.
        self.compile_net = False
        self.channels_last = False

    def set_speed_options(
        self, compile: bool = False, channels_last: bool = False, fused_attn: bool | None = None
    ) -> None:
        """Apply the speed switches to ``self.net``; a subclass calls this once the network is built.

        None of them changes the state_dict keys (``net.*``) or what the network computes beyond
        float rounding, so a checkpoint loads into a model built with or without them.

        Args:
            compile: Compile the modules of :meth:`compiled_modules` in place with
                ``nn.Module.compile`` (``torch.compile`` of their ``__call__``). Done in
                :meth:`configure_model`, i.e. when a Trainer sets up, not here: the FLOP count
                taken before fit and a model used outside a Trainer stay eager, and a DeiT
                teacher, which is not a submodule, is never compiled.
            channels_last: Put the network's 4-D weights in channels-last (NHWC) memory format
                and convert the input ``(B, C, H, W)`` to it in :meth:`forward`; convolutions
                then run on NHWC kernels (oneDNN on the CPU, cuDNN on the GPU).
            fused_attn: Set ``fused_attn`` on every attention module of the net that has one
                (timm's ViT ``Attention``, Swin's ``WindowAttention``): True runs
                ``F.scaled_dot_product_attention``, False the explicit ``softmax(q k^T) v``.
                None keeps what timm chose at construction (``TIMM_FUSED_ATTN``).
        """
        self.compile_net = compile
        self.channels_last = channels_last
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        if fused_attn is not None:
            attention = [m for m in self.net.modules() if hasattr(m, "fused_attn")]
            if not attention:
                raise ValueError(
                    f"model.fused_attn={fused_attn}, but {type(self.net).__name__} has no attention module "
                    "with a fused_attn switch; remove the key."
                )
            for module in attention:
                module.fused_attn = fused_attn

    def compiled_modules(self) -> list[nn.Module]:
        """The modules that ``compile=True`` compiles: the ones the forward pass calls."""
        return [self.net]

    def configure_model(self) -> None:
        # Lightning calls this at every fit, validate and test: compile once.
        for module in self.compiled_modules() if self.compile_net else []:
            if module._compiled_call_impl is None:
                module.compile()

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``(B, C, H, W)`` to logits ``(B, num_classes)``."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def training_loss(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Training objective for one batch; returns ``(loss, logits (B, K))``."""
        logits = self(x)
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing), logits

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss, logits = self.training_loss(x, y)
        self._check_finite(loss)
        # Soft targets (B, K) from mixup: accuracy against the dominant class.
        labels = y.argmax(-1) if y.ndim == 2 else y
        self.train_metrics.update(logits.detach(), labels)
        # Only the steps that loggers write (every log_every_n_steps) and an epoch's last one (for the
        # progress bar): each self.log costs about a millisecond of bookkeeping, 1-3 % of a step of
        # these small models on the CPU.
        trainer = self._trainer
        if (
            trainer is None
            or trainer.is_last_batch
            or (self.global_step + 1) % max(1, trainer.log_every_n_steps) == 0
        ):
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_epoch_end(self) -> None:
        # The epoch's training accuracy, logged once rather than registered at every step.
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def _check_finite(self, loss: Tensor) -> None:
        """Stop at a NaN/inf loss, before the optimizer step spreads it into the weights.

        Nothing is saved on the way out, so the last checkpoint stays the last good one. Reading
        the loss waits for the device, so on a GPU it is read only on logging steps.
        """
        if loss.device.type != "cpu" and self.global_step % self.trainer.log_every_n_steps:
            return
        if torch.isfinite(loss):
            return
        callbacks = self.trainer.checkpoint_callbacks if self._trainer is not None else []
        saved = [Path(p) for c in callbacks for p in (c.last_model_path, c.best_model_path) if p]
        last = str(max((p for p in saved if p.is_file()), key=lambda p: p.stat().st_mtime, default=""))
        raise FloatingPointError(
            f"the training loss is {loss.item()} at step {self.global_step} (epoch {self.current_epoch}); "
            f"last good checkpoint: {last or 'none saved yet'}. Lower model.optimizer.lr or set "
            "trainer.gradient_clip_val=1.0, then resume with ckpt_path=<that checkpoint>."
        )

    def _eval_step(self, stage: str, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """Evaluate one batch of ``stage`` ("val" or "test"); returns ``(loss, logits)``."""
        x, y = batch
        return self._log_eval(stage, self(x), y)

    def _log_eval(self, stage: str, logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Loss and accuracy of evaluation ``logits (B, K)`` against labels ``y (B,)``."""
        # Evaluation is always on hard labels, without smoothing, so runs stay comparable.
        loss = F.cross_entropy(logits, y)
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        metrics.update(logits, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage == "val", sync_dist=True)
        return loss, logits

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._eval_step("val", batch)[0]

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._eval_step("test", batch)[0]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Which variant wrote this file (a resume checks it) and the random state at this step,
        # so that a resumed run draws the same augmentations and drop-path masks as an unbroken one.
        checkpoint["vitbench"] = {"module": type(self).__name__, "rng": rng_states()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get("vitbench", {}).get("rng")

    def on_train_start(self) -> None:
        # Restored here, after the sanity check and the loaders' set-up, i.e. right before the
        # first batch after the checkpoint's step, where the unbroken run drew its next number.
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    def on_validation_epoch_end(self) -> None:
        # The sanity check's few batches must not count towards the best.
        if self.trainer.sanity_checking:
            return
        # compute() here, before Lightning resets the logged collection at epoch end.
        self.val_acc_best.update(self.val_metrics["acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> Any:
        factory = self.optimizer_factory
        if factory is None:
            factory = _default_optimizer
        keywords = getattr(factory, "keywords", {})
        weight_decay = keywords.get("weight_decay", DEFAULT_WEIGHT_DECAY)
        no_decay_names = getattr(self.net, "no_weight_decay", lambda: set())()
        groups = param_groups_weight_decay(self.net, weight_decay, no_weight_decay_list=no_decay_names)
        for group in groups:
            # Named so LearningRateMonitor logs lr/decay and lr/no_decay.
            group["name"] = "decay" if group["weight_decay"] else "no_decay"
        optimizer = factory(groups)
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, total_steps=total_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"},
        }


def rng_states() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python generator states, as tensors and plain values only,
    so that a checkpoint holding them still loads with ``torch.load(weights_only=True)``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": list(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`rng_states`."""
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _default_optimizer(params: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=DEFAULT_LR, weight_decay=DEFAULT_WEIGHT_DECAY)
