"""The one LightningModule of every vitbench classifier, built from a network.

:class:`ImageClassifier` takes ``net``, the network's config (``model.net``: a ``_target_`` factory
and its arguments, which Hydra hands over as a partial), and the training recipe. It builds the
network in its constructor, at the point where the run's random draws expect it, and keeps the
network's plain config in its hyperparameters, so ``ImageClassifier.load_from_checkpoint(path)``
rebuilds it without Hydra. The networks: the small-image sizes of :mod:`~vitbench.classification.vit`,
:mod:`~vitbench.classification.swin`, :mod:`~vitbench.classification.efficientvit` and
:mod:`~vitbench.classification.cnn`, or timm's own architecture by name
(:func:`~vitbench.classification.pretrained.timm_network`). Steps, loss and metrics live here only;
optimisation, speed switches and checkpoint state in :class:`~vitbench.run.task.TaskModule`, which
the denoiser shares.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import get_method
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from vitbench.classification.finetune import Finetune, classifier_heads, freeze_backbone, probe_modes
from vitbench.classification.task import CLASSIFICATION
from vitbench.run.checkpoints import CheckpointError
from vitbench.run.task import DEFAULT_LR, DEFAULT_WEIGHT_DECAY, TaskModule

__all__ = ["DEFAULT_LR", "DEFAULT_WEIGHT_DECAY", "ImageClassifier", "accuracy_metrics", "network_config"]

# A network as the config gives it: Hydra's partial of its factory (``_partial_: true``), or the plain
# ``{"_target_": ..., **arguments}`` that a checkpoint's hyperparameters hold.
NetConfig = Callable[[], nn.Module] | Mapping[str, Any]

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


def network_config(net: NetConfig) -> dict[str, Any]:
    """The plain ``{"_target_": "module.factory", **arguments}`` of a network's config."""
    if isinstance(net, functools.partial):
        if net.args:
            raise ValueError(
                f"model.net: give the arguments of {net.func.__qualname__} by name, not by position."
            )
        return {"_target_": f"{net.func.__module__}.{net.func.__qualname__}", **net.keywords}
    if isinstance(net, Mapping) and isinstance(net.get("_target_"), str):
        return dict(net)
    raise ValueError(
        f"model.net={net!r} is not a network's config: give its factory as _target_ and its arguments "
        "(e.g. model.net._target_=vitbench.classification.vit.vit)."
    )


def build_network(config: dict[str, Any]) -> nn.Module:
    """Call the factory that ``config["_target_"]`` names with the other keys."""
    arguments = {k: v for k, v in config.items() if not k.startswith("_")}
    return get_method(config["_target_"])(**arguments)


class ImageClassifier(TaskModule):
    """Shared training logic: cross-entropy, accuracy metrics, AdamW with split weight decay.

    Batches are ``(x, y)`` with ``x: (B, C, H, W)`` floats and ``y`` either class indices
    ``(B,)`` int64 or soft targets ``(B, K)`` float (mixup/cutmix); ``F.cross_entropy``
    takes both. Logged keys: ``train/loss`` (per step), ``train/acc``, ``val/loss``,
    ``val/acc``, ``val/acc_top5``, ``val/acc_best``, ``test/loss``, ``test/acc``,
    ``test/acc_top5`` (per epoch), accuracies as fractions.

    The network is built from ``net`` here (the ``init_record`` of timm's pretrained weights, which
    :func:`~vitbench.classification.pretrained.timm_network` leaves on it, moves to this module).
    Its parameters are ``net.*`` in the state dict; ``num_classes`` is the network's.

    Subclasses change behaviour through three seams instead of copying a step method:
    ``forward`` (logits used for evaluation), ``training_loss`` (the training objective) and
    ``_eval_step`` (evaluation of one batch); and, when they call parts of ``self.net`` rather
    than ``self.net(x)``, ``compiled_modules`` (what ``compile=True`` compiles).

    Args:
        net: The network's config (``model.net``): Hydra's partial of its factory, or the plain
            ``{"_target_": ..., **arguments}`` (what the saved hyperparameters hold).
        optimizer, scheduler, layer_decay: See :class:`~vitbench.run.task.TaskModule`.
        label_smoothing: Label smoothing of the cross-entropy, in [0, 1).
        finetune: ``full`` or ``linear`` (:meth:`set_finetune`).
        compile, channels_last, fused_attn: See :meth:`~vitbench.run.task.TaskModule.set_speed_options`.
    """

    task = CLASSIFICATION
    # Init arguments kept out of the checkpoint's hyperparameters (the network's plain config is
    # stored in their place); a subclass holding an nn.Module argument (a DeiT teacher) extends this tuple.
    hparams_ignore: tuple[str, ...] = ("optimizer", "scheduler", "net")
    # Network arguments kept out of them too: a checkpoint holds the fine-tuned weights, so
    # load_from_checkpoint must not fetch the pretrained ones again.
    net_args_ignore: tuple[str, ...] = ("pretrained",)

    def __init__(
        self,
        net: NetConfig,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None,
        label_smoothing: float = 0.0,
        layer_decay: float | None = None,
        finetune: Finetune = "full",
        compile: bool = False,
        channels_last: bool = False,
        fused_attn: bool | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler, layer_decay)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"model.label_smoothing={label_smoothing} must lie in [0, 1); 0.1 is usual.")
        config = network_config(net)
        # Lightning walks up the __init__ frames, so this also records every argument of the
        # subclass that called us (tested in tests/classification/test_base.py).
        self.save_hyperparameters(
            ignore=list(self.hparams_ignore), logger=False
        )  # train.py logs the whole config once
        self.hparams["net"] = {k: v for k, v in config.items() if k not in self.net_args_ignore}
        self.net = build_network(config)
        self.net_target = config["_target_"]  # which network: a resume checks it
        self.init_record = self.net.__dict__.pop("init_record", None)
        self.label_smoothing = label_smoothing
        self.finetune: Finetune = "full"
        self.set_speed_options(compile=compile, channels_last=channels_last, fused_attn=fused_attn)
        self.set_finetune(finetune)
        num_classes = getattr(self.net, "num_classes", None)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"model.net: {type(self.net).__name__} has num_classes={num_classes!r}; a classifier's network "
                "is a timm model with a classifier (num_classes >= 1: data.num_classes, not 0 in model.net.args)."
            )
        self.num_classes = num_classes

        self.train_metrics = accuracy_metrics(num_classes, "train/", top5=False)
        # Its running counts are saved in checkpoints too: a run resumed mid-epoch then reports the
        # epoch's train/acc over the whole epoch, as the unbroken run does, not over its second part.
        self.train_metrics.persistent(True)
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")
        self.val_acc_best = MaxMetric()
        # Saved in checkpoints (torchmetrics states are not, by default), so a resumed run keeps its best.
        self.val_acc_best.persistent(True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        # Every variant is an ImageClassifier: the network's factory tells a resume which one wrote it.
        checkpoint["vitbench"]["net"] = self.net_target

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved, built = checkpoint.get("vitbench", {}).get("net"), self.net_target
        if saved is not None and saved != built:  # before Lightning loads tensors that do not fit
            raise CheckpointError(
                f"the checkpoint was written by a classifier whose model.net is {saved}, but this run builds "
                f"{built}: pass the same model=... (and size=...) as the run that wrote it."
            )
        super().on_load_checkpoint(checkpoint)

    def set_finetune(self, finetune: Finetune) -> None:
        """``full``: every weight trains; ``linear``: linear probing (:mod:`vitbench.classification.finetune`)."""
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
            probe_modes(self.net, mode)
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

    def update_train_metrics(self, output: Tensor, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """The training accuracy from the step's logits ``output (B, K)``."""
        y = batch[1]
        labels = y.argmax(-1) if y.ndim == 2 else y  # soft targets (B, K) from mixup: the dominant class
        if batch_idx == 0:  # a run resumed from an epoch's end checkpoint holds that epoch's counts
            self.train_metrics.reset()
        self.train_metrics.update(output.detach(), labels)

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
