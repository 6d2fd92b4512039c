"""The one LightningModule that every vitbench classifier shares.

A variant subclasses :class:`ImageClassifier`, checks its constructor arguments, sets
``self.net`` to a timm model whose ``forward(x)`` maps ``(B, C, H, W)`` images to
``(B, num_classes)`` logits and passes its speed switches to :meth:`~ImageClassifier.set_speed_options`.
Steps, loss and metrics live here only; optimisation, speed switches and checkpoint state in
:class:`~vitbench.run.task.TaskModule`, which the denoiser shares.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim.lr_scheduler import LRScheduler
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from vitbench.classification.probe import Finetune, classifier_heads, freeze_backbone
from vitbench.run.task import DEFAULT_LR, DEFAULT_WEIGHT_DECAY, TaskModule

__all__ = ["DEFAULT_LR", "DEFAULT_WEIGHT_DECAY", "ImageClassifier", "accuracy_metrics"]

log = logging.getLogger(__name__)


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


class ImageClassifier(TaskModule):
    """Shared training logic: cross-entropy, accuracy metrics, AdamW with split weight decay.

    Batches are ``(x, y)`` with ``x: (B, C, H, W)`` floats and ``y`` either class indices
    ``(B,)`` int64 or soft targets ``(B, K)`` float (mixup/cutmix); ``F.cross_entropy``
    takes both. Logged keys: ``train/loss`` (per step), ``train/acc``, ``val/loss``,
    ``val/acc``, ``val/acc_top5``, ``val/acc_best``, ``test/loss``, ``test/acc``,
    ``test/acc_top5`` (per epoch), accuracies as fractions.

    A subclass sets ``self.net`` (a small-image network, or timm's own architecture through
    :func:`vitbench.classification.pretrained.timm_network`, which also sets ``init_record``), then
    calls :meth:`set_speed_options` and :meth:`set_finetune`.

    Subclasses change behaviour through three seams instead of copying a step method:
    ``forward`` (logits used for evaluation), ``training_loss`` (the training objective) and
    ``_eval_step`` (evaluation of one batch); and, when they call parts of ``self.net`` rather
    than ``self.net(x)``, ``compiled_modules`` (what ``compile=True`` compiles).

    Args:
        num_classes: Number of classes K.
        optimizer, scheduler: See :class:`~vitbench.run.task.TaskModule`.
        label_smoothing: Label smoothing of the cross-entropy, in [0, 1).
    """

    record_metrics = {"val_acc_best": "val/acc_best", "test_acc": "test/acc"}
    # Init arguments kept out of the checkpoint's hyperparameters; a subclass holding an
    # nn.Module argument (a DeiT teacher) extends this tuple. `pretrained` too: a checkpoint holds the
    # fine-tuned weights, so load_from_checkpoint must not fetch the pretrained ones again.
    hparams_ignore: tuple[str, ...] = ("optimizer", "scheduler", "pretrained")

    def __init__(
        self,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(optimizer, scheduler)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"model.label_smoothing={label_smoothing} must lie in [0, 1); 0.1 is usual.")
        # Lightning walks up the __init__ frames, so this also records every argument of the
        # subclass that called us (tested in tests/models/test_base.py).
        self.save_hyperparameters(
            ignore=list(self.hparams_ignore), logger=False
        )  # train.py logs the whole config once
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.finetune: Finetune = "full"

        self.train_metrics = accuracy_metrics(num_classes, "train/", top5=False)
        # Its running counts are saved in checkpoints too: a run resumed mid-epoch then reports the
        # epoch's train/acc over the whole epoch, as the unbroken run does, not over its second part.
        self.train_metrics.persistent(True)
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")
        self.val_acc_best = MaxMetric()
        # Saved in checkpoints (torchmetrics states are not, by default), so a resumed run keeps its best.
        self.val_acc_best.persistent(True)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        # Checkpoints written before the training accuracy's counts were saved: start them at zero.
        state = checkpoint.get("state_dict", {})
        for key, value in self.train_metrics.state_dict(prefix="train_metrics.").items():
            state.setdefault(key, torch.zeros_like(value))

    def set_finetune(self, finetune: Finetune) -> None:
        """``full``: every weight trains; ``linear``: linear probing (:mod:`vitbench.classification.probe`)."""
        freeze_backbone(self.net, finetune)
        self.finetune = finetune
        if finetune == "linear":
            trained = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
            log.info(
                "model.finetune=linear: %d of %d parameters train (the classifier); the backbone is frozen and "
                "in eval mode (Lightning's note on modules in eval mode is expected)",
                trained,
                sum(p.numel() for p in self.net.parameters()),
            )

    def backbone_context(self) -> AbstractContextManager:
        """No gradients through a linear probe's frozen backbone; nothing otherwise."""
        return torch.no_grad() if self.finetune == "linear" else nullcontext()

    def train(self, mode: bool = True) -> ImageClassifier:
        super().train(mode)
        if self.finetune == "linear":  # the frozen backbone's batch norm and dropout stay as evaluated
            self.net.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``(B, C, H, W)`` to logits ``(B, num_classes)``."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.finetune == "linear":
            with self.backbone_context():
                features = self.net.forward_head(self.net.forward_features(x), pre_logits=True)  # (B, D)
            return classifier_heads(self.net)[0](features)
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
        if batch_idx == 0:  # a run resumed from an epoch's end checkpoint holds that epoch's counts
            self.train_metrics.reset()
        self.train_metrics.update(logits.detach(), labels)
        if self._logging_step():
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_epoch_end(self) -> None:
        # The epoch's training accuracy, logged once rather than registered at every step.
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

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

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        # The logits too: vitbench.classification.pictures.TestPictures draws from them in on_test_batch_end.
        loss, logits = self._eval_step("test", batch)
        return {"loss": loss, "logits": logits}

    def on_validation_epoch_end(self) -> None:
        # The sanity check's few batches must not count towards the best.
        if self.trainer.sanity_checking:
            return
        # compute() here, before Lightning resets the logged collection at epoch end.
        self.val_acc_best.update(self.val_metrics["acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)
