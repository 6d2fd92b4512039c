"""What every vitbench LightningModule shares, whatever its task: the optimizer and schedule,
speed switches, a stop at a non-finite loss, random states in checkpoints, and the run record.

A task's module (:class:`~vitbench.classification.base.ImageClassifier`,
:class:`~vitbench.denoising.denoiser.DenoiserModule`) subclasses :class:`TaskModule`, sets
``self.net`` (the network the optimizer trains) and says which checkpoint metric is best and
what its run adds to results.json.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler
from torchmetrics import MeanMetric, MinMetric

from vitbench.run.optim import check_layer_decay, param_groups
from vitbench.run.results import RECORD_FORMAT
from vitbench.run.task_definition import Task

DEFAULT_LR = 1e-3
DEFAULT_WEIGHT_DECAY = 0.05


class TaskModule(pl.LightningModule):
    """The shared base. A task's module sets the class attribute ``task``, its
    :class:`~vitbench.run.task_definition.Task`: what :meth:`run_record` writes to results.json,
    the metric the best checkpoint is chosen by and what a sweeper optimizes (the callbacks config
    reads them through the ``vitbench.task`` resolver).

    Args:
        optimizer: Partial optimizer taking the parameter groups, e.g. Hydra's
            ``functools.partial(torch.optim.AdamW, lr=..., weight_decay=...)``. Its
            ``weight_decay`` keyword is applied to weights only (not to norms, biases,
            position embeddings or tokens). Default AdamW(lr=1e-3, weight_decay=0.05).
        scheduler: Partial ``(optimizer, total_steps) -> LRScheduler`` stepped every
            optimizer step, e.g. :func:`vitbench.run.warmup_cosine`. Default: constant lr.
        layer_decay: Layer-wise lr decay in (0, 1] (``model.layer_decay``), or None: off
            (:func:`vitbench.run.optim.param_groups`).
    """

    task: ClassVar[Task]
    net: nn.Module

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None,
        layer_decay: float | None = None,
    ) -> None:
        super().__init__()
        self.layer_decay = check_layer_decay(layer_decay)  # before any training
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        # How the network started when not from its random initialisation (pretrained weights, an
        # earlier run: vitbench.run.init); saved in checkpoints, written to results.json as `init`.
        self.init_record: dict[str, Any] | None = None
        self._rng_to_restore: dict | None = None
        # Off until the subclass calls set_speed_options with its switches.
        self.compile_net = False
        self.channels_last = False

    def _logging_step(self) -> bool:
        """Whether this training step's loss is logged: only the steps that loggers write (every
        log_every_n_steps) and an epoch's last one (for the progress bar). Each self.log costs about
        a millisecond of bookkeeping, 1-3 % of a step of these small models on the CPU."""
        trainer = self._trainer
        return (
            trainer is None
            or trainer.is_last_batch
            or (self.global_step + 1) % max(1, trainer.log_every_n_steps) == 0
        )

    def training_loss(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The task's training objective on one batch (images ``x (B, C, H, W)``, targets ``y``);
        returns ``(loss, output)``, the output being what :meth:`update_train_metrics` reads (a
        classifier's logits ``(B, K)``). vitbench-bench's bare loop times this same call."""
        raise NotImplementedError(f"{type(self).__name__} defines no training_loss(x, y)")

    def step_loss(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> tuple[Tensor, Tensor]:
        """:meth:`training_loss` of training batch ``batch_idx``; a task whose random draws are
        keyed by the step (MAE's masks) overrides this to pass them in."""
        return self.training_loss(*batch)

    def update_train_metrics(self, output: Tensor, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Metrics of the training batch from its (finite) loss's ``output``, e.g. a classifier's
        accuracy from its logits; none by default."""

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Every task's training step: the loss (:meth:`step_loss`), a stop if it is not finite,
        the training metrics, and ``train/loss`` on the logging steps."""
        loss, output = self.step_loss(batch, batch_idx)
        self._check_finite(loss)
        self.update_train_metrics(output, batch, batch_idx)
        if self._logging_step():
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def after_optimizer_step(self) -> None:
        """Work that belongs to every optimizer step (a denoiser's EMA update); vitbench-bench's bare
        loop calls it too, so both time the same step."""

    def run_record(self, metrics: dict[str, float]) -> dict[str, Any]:
        """What this run adds to results.json beyond the common keys, from the metrics logged by
        the end of fit and test (``{"val/acc_best": ..., "test/acc": ...}``): each figure of its
        task's definition read from the logs, null where it was not logged, an optional one (DeiT's
        heads) only where it was. A subclass adds the figures it computes itself."""
        optional = set(self.task.optional_keys)
        record = {
            key: metrics.get(metric)
            for key, metric in self.task.record_metrics.items()
            if key not in optional or metric in metrics
        }
        return {**record, "init": self.init_record} if self.init_record is not None else record

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

    def trained_modules(self) -> list[nn.Module]:
        """The modules whose parameters the optimizer trains: ``self.net``, and what a task trains
        beside it (MAE's decoder), each with its own ``no_weight_decay`` names."""
        return [self.net]

    def compiled_modules(self) -> list[nn.Module]:
        """The modules that ``compile=True`` compiles: the ones the forward pass calls."""
        return [self.net]

    def configure_model(self) -> None:
        # Lightning calls this at every fit, validate and test: compile once.
        for module in self.compiled_modules() if self.compile_net else []:
            if module._compiled_call_impl is None:
                module.compile()

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

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Which variant wrote this file (a resume checks it) and the random state at this step,
        # so that a resumed run draws the same augmentations and drop-path masks as an unbroken one.
        # `format`: a resume or init_from refuses a checkpoint of another format (run/checkpoints.py).
        checkpoint["vitbench"] = {"format": RECORD_FORMAT, "module": type(self).__name__, "rng": rng_states()}
        if self.init_record is not None:  # a resumed run reports how its network started
            checkpoint["vitbench"]["init"] = self.init_record

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get("vitbench", {}).get("rng")

    def on_train_start(self) -> None:
        # Restored here, after the sanity check and the loaders' set-up, i.e. right before the
        # first batch after the checkpoint's step, where the unbroken run drew its next number.
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    def configure_optimizers(self) -> Any:
        factory = self.optimizer_factory
        if factory is None:
            factory = _default_optimizer
        keywords = getattr(factory, "keywords", {})
        weight_decay = keywords.get("weight_decay", DEFAULT_WEIGHT_DECAY)
        lr = keywords.get("lr", DEFAULT_LR)
        optimizer = factory(param_groups(self.trained_modules(), weight_decay, lr, self.layer_decay))
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


# Evaluation draws (a denoiser's t and noise, MAE's masks) come from generators seeded by this and
# the batch index: every validation and test sees the same ones, whatever the run's seed or epoch.
EVAL_SEED = 10_007


class LossTaskModule(TaskModule):
    """A task judged by a validation loss, lower is better (the denoisers, MAE): its mean over each
    validation (``val/loss``) and the best of those (``val/loss_best``, kept in checkpoints, so a
    resumed run keeps its best; the sanity check's few batches never count), and ``test/loss``.

    A subclass gives ``_eval_loss(batch, batch_idx)``, its loss with every random draw fixed by the
    batch index (from :data:`EVAL_SEED`), so that validations are comparable from epoch to epoch.
    """

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.val_loss = MeanMetric()
        self.val_loss_best = MinMetric()
        self.val_loss_best.persistent(True)

    def _eval_loss(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        raise NotImplementedError

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._eval_loss(batch, batch_idx)
        self.val_loss.update(loss, weight=len(batch[0]))
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._eval_loss(batch, batch_idx)
        self.log("test/loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_loss_best.update(self.val_loss.compute())
        self.log("val/loss_best", self.val_loss_best.compute(), prog_bar=True, sync_dist=True)
