"""Distillation loss for DeiT's class and distillation heads."""

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

DistillationKind = Literal["none", "soft", "hard"]


class DistillationLoss(nn.Module):
    """Loss of a DeiT student with a class head and a distillation head.

    From "Training data-efficient image transformers & distillation through attention"
    (Touvron et al., 2021, https://arxiv.org/abs/2012.12877), Section 4. The total is
    ``(1 - alpha) * CE(cls_logits, targets) + alpha * distillation``, where distillation is

    - ``"soft"``: ``tau**2 * KL(softmax(teacher / tau) || softmax(dist / tau))``;
    - ``"hard"``: plain cross-entropy of the distillation head against the teacher's argmax,
      as in DeiT (no label smoothing on the teacher's labels);
    - ``"none"``: both heads learn from the labels (DeiT's "no distillation" row), so the
      total is the mean of the two label cross-entropies; ``alpha`` and the teacher are unused.

    Departure from the reference: the soft KL term is averaged over the batch
    (``reduction="batchmean"``, as in Hinton et al. and timm's ``TokenDistillationTask``).
    DeiT's ``losses.py`` sums and divides by ``numel`` (batch x classes), which makes the
    soft term K times smaller (facebookresearch/deit issue #61). With the batch mean the
    gradient scale of the soft term does not shrink with the number of classes, so ``alpha``
    means the same on 10 and on 1000 classes.

    Args:
        kind: Which distillation term to use.
        alpha: Weight of the distillation term, in [0, 1].
        tau: Softmax temperature of the soft term, > 0.
        label_smoothing: Label smoothing of the cross-entropies against ``targets``.
    """

    def __init__(
        self,
        kind: DistillationKind,
        alpha: float = 0.5,
        tau: float = 1.0,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        allowed = get_args(DistillationKind)
        if kind not in allowed:
            raise ValueError(f"distillation kind={kind!r} is not supported; write one of {allowed}.")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"distillation alpha={alpha} is outside [0, 1]; write a weight in [0, 1].")
        if tau <= 0.0:
            raise ValueError(f"distillation tau={tau} must be > 0; write a positive temperature, e.g. 1.0.")
        self.kind = kind
        self.alpha = alpha
        self.tau = tau
        self.label_smoothing = label_smoothing

    def forward(
        self,
        cls_logits: torch.Tensor,
        dist_logits: torch.Tensor,
        teacher_logits: torch.Tensor | None,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        """Compute the scalar loss.

        Args:
            cls_logits: Class-head logits, (B, K).
            dist_logits: Distillation-head logits, (B, K).
            teacher_logits: Teacher logits, (B, K); may be None when ``kind="none"``.
            targets: Class indices (B,) int64, or soft targets (B, K) float (e.g. from mixup).

        Returns:
            The loss, a 0-dim tensor.
        """
        base = F.cross_entropy(cls_logits, targets, label_smoothing=self.label_smoothing)
        if self.kind == "none":
            dist = F.cross_entropy(dist_logits, targets, label_smoothing=self.label_smoothing)
            return (base + dist) / 2
        if teacher_logits is None:
            raise ValueError(f"distillation kind={self.kind!r} needs teacher_logits, got None.")
        teacher_logits = teacher_logits.detach()  # the teacher is frozen; never train it through the loss
        if self.kind == "soft":
            t = self.tau
            dist = F.kl_div(
                F.log_softmax(dist_logits / t, dim=1),
                F.log_softmax(teacher_logits / t, dim=1),
                reduction="batchmean",
                log_target=True,
            ) * (t * t)
        else:
            dist = F.cross_entropy(dist_logits, teacher_logits.argmax(dim=1))
        return (1 - self.alpha) * base + self.alpha * dist
