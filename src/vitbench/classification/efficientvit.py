"""EfficientViT (MIT) for small images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from timm.models.efficientvit_mit import EfficientVit
from torch.optim.lr_scheduler import LRScheduler

from vitbench.classification.base import ImageClassifier
from vitbench.classification.pretrained import Pretrained, timm_network
from vitbench.classification.probe import Finetune
from vitbench.run.checks import check_rate

# timm builds linear-attention blocks only from the third stage after the stem on.
FIRST_ATTENTION_STAGE = 3


def feature_sides(img_size: int, num_entries: int) -> list[int]:
    """Feature-map side after the stem and after each stage, for ``num_entries`` widths.

    The stem and each stage start with a stride-2, padding-1 3x3 conv, so every step
    halves the side with ceil (28 -> 14 -> 7 -> 4 -> 2).
    """
    sides = [(img_size + 1) // 2]
    for _ in range(num_entries - 1):
        sides.append((sides[-1] + 1) // 2)
    return sides


class EfficientViTModule(ImageClassifier):
    """EfficientViT (Cai et al., 2023, "EfficientViT: Lightweight Multi-Scale Attention for
    High-Resolution Dense Prediction"), the MIT B-series design, from timm.

    ``widths[0]``/``depths[0]`` describe the stem (stride 2); every further entry is one
    stage that halves the resolution again, so the total stride is ``2**len(widths)``.
    Stages from the third after the stem on use ReLU linear attention (LiteMLA); earlier
    ones are MBConv blocks.

    Small-image adaptation: EfficientViT-B0 has 5 entries (stride 32), which on 28 px would
    end on a 1x1 map where attention over one token is meaningless. The default keeps
    4 entries (28 -> 14 -> 7 -> 4 -> 2), so attention runs on the final 2x2 map, and
    uses narrow widths and a small head ((256, 256) instead of (1024, 1280)) because this
    network is made of many tiny ops that are slow on a CPU (~0.7M parameters, ~900
    training images/s at batch 256 on two CPU cores). A configuration whose
    final map would be 1x1 is refused at construction.

    Shapes: ``x (B, in_chans, H, W)`` -> logits ``(B, num_classes)``; the last stage's
    features are ``(B, widths[-1], S, S)`` with ``S`` the last of :func:`feature_sides`.

    With ``timm_name`` (``size=pretrained``: EfficientViT-B1) the network is timm's own architecture
    (stride 32, any input size: at 224 px its last stage runs at 7x7), optionally with ``pretrained``
    weights; the CPU-size shape keys must then be None.

    Args:
        num_classes: Number of classes.
        img_size: Side of the square input image (``data.img_size``); used for the checks.
        in_chans: Image channels (``data.channels``).
        widths: Channels of the stem and of each stage.
        depths: Blocks of the stem and of each stage (same length as ``widths``).
        head_dim: Channels per attention head; must divide the attention stages' widths.
        expand_ratio: MBConv and MLP expansion ratio.
        head_widths: Widths of the two-layer classifier head.
        drop_rate: Dropout before the final linear layer.
        channels_last, compile: See :meth:`ImageClassifier.set_speed_options`.
        timm_name, timm_args, pretrained, data_mean, data_std: timm's architecture and its weights
            (:func:`vitbench.classification.pretrained.timm_network`).
        finetune: ``full`` or ``linear`` (:meth:`ImageClassifier.set_finetune`).
        optimizer, scheduler, label_smoothing: See :class:`ImageClassifier`.
    """

    def __init__(
        self,
        num_classes: int = 10,
        img_size: int = 28,
        in_chans: int = 1,
        widths: Sequence[int] | None = (16, 32, 64, 128),
        depths: Sequence[int] | None = (1, 1, 2, 2),
        head_dim: int | None = 16,
        expand_ratio: float | None = 4.0,
        head_widths: Sequence[int] | None = (256, 256),
        drop_rate: float = 0.0,
        channels_last: bool = True,
        compile: bool = False,
        timm_name: str | None = None,
        timm_args: dict[str, Any] | None = None,
        pretrained: Pretrained = False,
        finetune: Finetune = "full",
        data_mean: Sequence[float] | None = None,
        data_std: Sequence[float] | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., LRScheduler] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        check_rate("model.drop_rate", drop_rate, "0.0 to 0.1")
        # Hydra passes ListConfig; tuples before super() so the saved hparams are plain too.
        plain = lambda seq: tuple(int(v) for v in seq) if seq is not None else None  # noqa: E731
        widths, depths, head_widths = plain(widths), plain(depths), plain(head_widths)
        cpu_size = dict(
            widths=widths,
            depths=depths,
            head_dim=head_dim,
            expand_ratio=expand_ratio,
            head_widths=head_widths,
        )
        net, init = timm_network(
            timm_name, pretrained, timm_args, cpu_size, (data_mean, data_std), num_classes=num_classes,
            in_chans=in_chans, drop_rate=drop_rate,
        )  # fmt: skip
        if net is None:
            check_efficientvit_shape(img_size, widths, depths, head_dim, head_widths)
        super().__init__(num_classes, optimizer, scheduler, label_smoothing)
        if net is None:
            net = EfficientVit(in_chans=in_chans, drop_rate=drop_rate, num_classes=num_classes, **cpu_size)
        self.net, self.init_record = net, init
        self.set_speed_options(compile=compile, channels_last=channels_last)
        self.set_finetune(finetune)


def check_efficientvit_shape(
    img_size: int,
    widths: tuple[int, ...],
    depths: tuple[int, ...],
    head_dim: int,
    head_widths: tuple[int, ...],
) -> None:
    """Raise ValueError, naming the key to change, for an EfficientViT that cannot run as configured."""
    if len(widths) != len(depths):
        raise ValueError(
            f"model.widths={list(widths)} and model.depths={list(depths)} need one entry each for the stem "
            f"and every stage; give them the same length."
        )
    if len(widths) <= FIRST_ATTENTION_STAGE:
        raise ValueError(
            f"model.widths={list(widths)} has {len(widths)} entries, so no stage uses attention (timm "
            f"starts it at entry {FIRST_ATTENTION_STAGE + 1}); give at least {FIRST_ATTENTION_STAGE + 1} entries."
        )
    if len(head_widths) != 2:
        raise ValueError(
            f"model.head_widths={list(head_widths)} must have exactly 2 entries, e.g. [256, 256]."
        )
    sides = feature_sides(img_size, len(widths))
    if sides[-1] == 1:
        usable = next(i for i, side in enumerate(sides) if side == 1)  # entries that keep sides >= 2
        raise ValueError(
            f"with data.img_size={img_size} the feature map shrinks {' -> '.join(map(str, [img_size, *sides]))}"
            f" and collapses to 1x1 after {len(widths)} entries of model.widths/model.depths; keep at most "
            f"{usable} entries there (fewer stages) or use a larger data.img_size (at least "
            f"{2 ** len(widths) + 1})."
        )
    for i in range(FIRST_ATTENTION_STAGE, len(widths)):
        if widths[i] % head_dim:
            raise ValueError(
                f"model.widths[{i}]={widths[i]} is an attention stage and must be a multiple of "
                f"model.head_dim={head_dim}."
            )
