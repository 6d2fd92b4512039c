"""DeiT: a ViT with a distillation token that learns from a frozen CNN teacher."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from timm.models.deit import VisionTransformerDistilled
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from vitbench.classification.base import ImageClassifier, NetConfig
from vitbench.classification.distillation import DistillationLoss
from vitbench.classification.teacher import Teacher, TeacherError


def head_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Top-1 accuracy of the class head alone and of the distillation head alone."""
    heads = {
        f"acc_{h}": MulticlassAccuracy(num_classes=num_classes, average="micro") for h in ("cls", "dist")
    }
    return MetricCollection(heads, prefix=prefix, compute_groups=False)


class DeiTModule(ImageClassifier):
    """DeiT (Touvron et al. 2021, "Training data-efficient image transformers & distillation
    through attention", arXiv 2012.12877): an :class:`ImageClassifier` whose network is timm's
    ``VisionTransformerDistilled`` (:func:`~vitbench.classification.vit.vit` with ``distilled=True``, or timm's
    own distilled architecture by name).

    In training, the class token's head learns from the labels and the distillation token's head
    from the teacher (``criterion``, a :class:`DistillationLoss`); at evaluation the prediction is the
    average of the two heads, and each head's own accuracy is logged too (``val/acc_cls``,
    ``val/acc_dist``, same for ``test/``). With ``finetune=linear`` both heads train on the frozen
    backbone.

    The teacher is built at construction, after the network, from ``teacher`` (Hydra's partial of
    :func:`~vitbench.classification.teacher.load_teacher`: a vitbench ``model=cnn`` checkpoint, or a
    timm name), and only when the criterion distils. It is frozen, stays in eval mode, is not a
    registered submodule (so it is neither optimized nor saved in this module's checkpoint) and is
    not in the hyperparameters, nor is the criterion: ``DeiTModule.load_from_checkpoint(path)``
    predicts without them (its criterion is then ``kind="none"``).

    Args:
        net: The distilled ViT's config, as :class:`ImageClassifier`'s.
        criterion: The distillation loss; None: ``DistillationLoss("none")`` with ``label_smoothing``.
        teacher: Builds the teacher (None when it has nothing to load); None: no teacher, fine for
            prediction, and for training only with ``kind="none"``.
        recipe: :class:`ImageClassifier`'s other arguments.
    """

    hparams_ignore = (*ImageClassifier.hparams_ignore, "teacher", "criterion")
    # Each head's accuracy alone (val/acc_cls, ...) reaches results.json as the classification task's
    # optional figures (vitbench.classification.task): written where they were logged, i.e. by DeiT.

    def __init__(
        self,
        net: NetConfig,
        criterion: DistillationLoss | None = None,
        teacher: Callable[[], Teacher | None] | None = None,
        **recipe: Any,
    ) -> None:
        super().__init__(net, **recipe)
        if not isinstance(self.net, VisionTransformerDistilled):
            built = self.hparams["net"].get("name", self.hparams["net"]["_target_"])
            raise ValueError(
                f"model.net={built} builds a {type(self.net).__name__}; model=deit needs timm's distilled ViT "
                "(deit_tiny_distilled_patch16_224, deit_small_distilled_patch16_224, ...). Use model=vit for others."
            )
        self.criterion = criterion or DistillationLoss("none", label_smoothing=self.label_smoothing)
        self.val_head_metrics = head_metrics(self.num_classes, "val/")
        self.test_head_metrics = head_metrics(self.num_classes, "test/")
        self.set_teacher(teacher() if teacher is not None and self.criterion.kind != "none" else None)

    def set_teacher(self, teacher: Teacher | None) -> None:
        """Attach the frozen teacher, or None. Kept in ``__dict__``, not as a submodule, so it is
        neither optimized nor saved in the checkpoint."""
        self.__dict__["teacher"] = teacher

    def compiled_modules(self) -> list[nn.Module]:
        # heads() calls forward_features and the two heads, never net.__call__, which is what
        # nn.Module.compile wraps: compile the transformer blocks, where the compute is.
        return [self.net.blocks]

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images ``(B, C, H, W)`` -> class-head and distillation-head logits, each ``(B, K)``."""
        with self.backbone_context():  # no gradients through a linear probe's frozen backbone
            tokens = self.net.forward_features(x)  # (B, 2 + N, D): class, distillation, patches
        cls_logits = self.net.head(self.net.head_drop(tokens[:, 0]))
        dist_logits = self.net.head_dist(self.net.head_drop(tokens[:, 1]))
        return cls_logits, dist_logits

    def forward(self, x: Tensor) -> Tensor:
        """The DeiT prediction: the average of the two heads, ``(B, K)``."""
        cls_logits, dist_logits = self.heads(x)
        return (cls_logits + dist_logits) / 2

    def on_fit_start(self) -> None:
        teacher: Teacher | None = self.__dict__["teacher"]
        if teacher is None and self.criterion.kind != "none":
            raise TeacherError(
                f"DeiT with model.criterion.kind={self.criterion.kind!r} needs a teacher: set "
                "model.teacher.checkpoint (make one with `make teacher`), or use "
                "model.criterion.kind=none."
            )
        if teacher is not None:
            teacher.to(self.device)

    def training_loss(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        cls_logits, dist_logits = self.heads(x)
        teacher: Teacher | None = self.__dict__["teacher"]
        teacher_logits = teacher(x) if teacher is not None else None
        loss = self.criterion(cls_logits, dist_logits, teacher_logits, y)
        return loss, (cls_logits + dist_logits) / 2

    def _eval_step(self, stage: str, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x, y = batch
        cls_logits, dist_logits = self.heads(x)
        heads = self.val_head_metrics if stage == "val" else self.test_head_metrics
        heads["acc_cls"].update(cls_logits, y)
        heads["acc_dist"].update(dist_logits, y)
        self.log_dict(heads, on_step=False, on_epoch=True, sync_dist=True)
        return self._log_eval(stage, (cls_logits + dist_logits) / 2, y)
