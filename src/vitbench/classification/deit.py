"""DeiT: a ViT with a distillation token that learns from a frozen CNN teacher."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from timm.models.deit import VisionTransformerDistilled
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from vitbench.classification.base import ImageClassifier
from vitbench.classification.distillation import DistillationKind, DistillationLoss
from vitbench.classification.pretrained import Pretrained, timm_network
from vitbench.classification.probe import Finetune
from vitbench.classification.teacher import Teacher, TeacherError, load_teacher
from vitbench.classification.vit import vit_arguments
from vitbench.run.checks import check_rate


def head_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Top-1 accuracy of the class head alone and of the distillation head alone."""
    heads = {
        f"acc_{h}": MulticlassAccuracy(num_classes=num_classes, average="micro") for h in ("cls", "dist")
    }
    return MetricCollection(heads, prefix=prefix, compute_groups=False)


class DeiTModule(ImageClassifier):
    """DeiT (Touvron et al. 2021, "Training data-efficient image transformers & distillation
    through attention", arXiv 2012.12877): timm's ``VisionTransformerDistilled``.

    Small-image arguments as in :class:`ViTModule` (patches of ~7 px on 28 px images). In
    training, the class token's head learns from the labels and the distillation token's head
    from the teacher (:class:`DistillationLoss`); at evaluation the prediction is the average of
    the two heads, and each head's own accuracy is logged too (``val/acc_cls``,
    ``val/acc_dist``, same for ``test/``).

    The teacher is built at construction from ``teacher`` (a vitbench ``model=cnn``
    checkpoint, or a timm name), is frozen, stays in eval mode, is not a registered submodule
    (so it is neither optimized nor saved in this module's checkpoint) and its settings are not
    in the hyperparameters: ``DeiTModule.load_from_checkpoint(path)`` predicts without it.

    With ``timm_name`` (``size=pretrained``: DeiT-S distilled) the network is timm's own distilled
    architecture, optionally with ``pretrained`` weights, as :class:`ViTModule`'s. With
    ``finetune=linear`` both heads train on the frozen backbone.

    Args:
        distillation: ``{"kind": "none"|"soft"|"hard", "alpha": float, "tau": float}``.
        teacher: ``{"checkpoint": path|None, "timm_name": str|None, "pretrained": bool|path}``
            (``pretrained`` in every form of ``model.pretrained``); None (as after
            ``load_from_checkpoint``) means no teacher: fine for prediction, and for training only
            with ``kind="none"``.
        data_mean, data_std: the student's normalization, so the teacher's input can be adapted.
        dataset: the dataset's name, for the messages that say how to make a teacher.
        global_pool: ``"token"`` only: DeiT classifies its class and distillation tokens.
        Other args: as :class:`ViTModule` and :class:`ImageClassifier`.
    """

    hparams_ignore = (*ImageClassifier.hparams_ignore, "teacher")
    # Each head alone, besides the combined prediction.
    record_metrics = {
        **ImageClassifier.record_metrics,
        **{
            f"{stage}_acc_{head}": f"{stage}/acc_{head}"
            for head in ("cls", "dist")
            for stage in ("val", "test")
        },
    }

    def __init__(
        self,
        num_classes: int = 10,
        img_size: int = 28,
        in_chans: int = 1,
        patch_size: int | None = 7,
        embed_dim: int | None = 128,
        depth: int | None = 6,
        num_heads: int | None = 4,
        mlp_ratio: float | None = 2.0,
        drop_path_rate: float = 0.0,
        global_pool: str | None = "token",
        fused_attn: bool = True,
        compile: bool = False,
        distillation: dict[str, Any] | None = None,
        teacher: dict[str, Any] | None = None,
        data_mean: Sequence[float] = (0.5,),
        data_std: Sequence[float] = (0.25,),
        dataset: str = "fashion_mnist",
        timm_name: str | None = None,
        timm_args: dict[str, Any] | None = None,
        pretrained: Pretrained = False,
        finetune: Finetune = "full",
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        check_rate("model.drop_path_rate", drop_path_rate, "0.1")
        if global_pool not in ("token", None):
            raise ValueError(
                f"model.global_pool={global_pool!r}: DeiT classifies its class and distillation tokens; "
                "use model.global_pool=token (average pooling exists for model=vit)."
            )
        # Plain values before save_hyperparameters (Hydra hands over DictConfig/ListConfig).
        distillation = {"kind": "hard", "alpha": 0.5, "tau": 1.0, **dict(distillation or {})}
        data_mean, data_std = [float(m) for m in data_mean], [float(s) for s in data_std]
        cpu_size = dict(
            patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio
        )
        net, init = timm_network(
            timm_name, pretrained, timm_args, cpu_size, (data_mean, data_std), num_classes=num_classes,
            in_chans=in_chans, img_size=img_size, drop_path_rate=drop_path_rate,
        )  # fmt: skip
        if net is None:
            args = vit_arguments(
                img_size,
                in_chans=in_chans,
                num_classes=num_classes,
                drop_path_rate=drop_path_rate,
                **cpu_size,
            )
        elif not isinstance(net, VisionTransformerDistilled):
            raise ValueError(
                f"model.timm_name={timm_name} builds a {type(net).__name__}; model=deit needs timm's distilled ViT "
                "(deit_tiny_distilled_patch16_224, deit_small_distilled_patch16_224, ...). Use model=vit for others."
            )
        super().__init__(num_classes, optimizer, scheduler, label_smoothing)
        self.net = net if net is not None else VisionTransformerDistilled(**args)
        self.init_record = init
        self.set_speed_options(compile=compile, fused_attn=fused_attn)
        self.set_finetune(finetune)
        kind: DistillationKind = distillation["kind"]
        self.criterion = DistillationLoss(kind, distillation["alpha"], distillation["tau"], label_smoothing)
        self.val_head_metrics = head_metrics(num_classes, "val/")
        self.test_head_metrics = head_metrics(num_classes, "test/")
        self.set_teacher(None)
        if teacher and (teacher.get("checkpoint") or teacher.get("timm_name")) and kind != "none":
            self.set_teacher(
                load_teacher(
                    teacher.get("checkpoint"),
                    teacher.get("timm_name"),
                    teacher.get("pretrained", False),
                    num_classes,
                    (data_mean, data_std, img_size, in_chans),
                    dataset,
                )
            )

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
                f"DeiT with distillation kind={self.criterion.kind!r} needs a teacher: set "
                "model.teacher.checkpoint (make one with `make teacher`), or use "
                "model.distillation.kind=none."
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
