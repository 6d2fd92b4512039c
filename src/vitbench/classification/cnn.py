"""A small ResNet: the CNN baseline and the DeiT teacher."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from timm.models.resnet import BasicBlock, ResNet
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from vitbench.classification.base import ImageClassifier
from vitbench.classification.pretrained import Pretrained, timm_network
from vitbench.classification.probe import Finetune
from vitbench.run.checks import check_rate


class CNNModule(ImageClassifier):
    """ResNet with basic blocks (He et al., 2016, "Deep Residual Learning for Image
    Recognition"), timm's implementation with a small-image stem.

    Small-image adaptation: ImageNet's 7x7 stride-2 stem and 3x3 max-pool divide the side
    by 4 before the first stage, so 28 px would reach 1x1 in the last stage. Here the stem
    is one 3x3 conv of stride ``stem_stride`` (2 by default: 28 -> 14) and there is no
    max-pool; the four stages then run at 14, 7, 4 and 2 px. ``stem_stride=1`` is the
    CIFAR-style ResNet (stages at 28..4 px): more accurate, about 4x the compute. The
    default (widths 32..256, one block per stage, 1.2M parameters) trains at ~1700
    images/s at batch 256 on two CPU cores.

    Shapes: ``x (B, in_chans, H, W)`` -> logits ``(B, num_classes)``; stage ``i`` outputs
    ``(B, channels[i], H / (stem_stride * 2**i), ...)`` (ceil).

    With ``timm_name`` (``size=pretrained``: ResNet-50) the network is any timm architecture as
    timm builds it (its ImageNet stem), optionally with ``pretrained`` weights; the CPU-size shape
    keys must then be None.

    Args:
        num_classes: Number of classes.
        in_chans: Image channels (``data.channels``).
        channels: Widths of the four stages.
        layers: Basic blocks in each of the four stages.
        stem_stride: Stride of the 3x3 stem conv, 1 or 2.
        drop_path_rate: Stochastic-depth rate of the last block.
        channels_last, compile: See :meth:`ImageClassifier.set_speed_options`.
        timm_name, timm_args, pretrained, data_mean, data_std: timm's architecture and its weights
            (:func:`vitbench.classification.pretrained.timm_network`).
        finetune: ``full`` or ``linear`` (:meth:`ImageClassifier.set_finetune`).
        optimizer, scheduler, label_smoothing: See :class:`ImageClassifier`.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        channels: Sequence[int] | None = (32, 64, 128, 256),
        layers: Sequence[int] | None = (1, 1, 1, 1),
        stem_stride: int | None = 2,
        drop_path_rate: float = 0.0,
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
        check_rate("model.drop_path_rate", drop_path_rate, "0.05")
        # Hydra passes ListConfig; tuples before super() so the saved hparams are plain too.
        channels = tuple(int(c) for c in channels) if channels is not None else None
        layers = tuple(int(n) for n in layers) if layers is not None else None
        cpu_size = dict(channels=channels, layers=layers, stem_stride=stem_stride)
        net, init = timm_network(
            timm_name, pretrained, timm_args, cpu_size, (data_mean, data_std), num_classes=num_classes,
            in_chans=in_chans, drop_path_rate=drop_path_rate,
        )  # fmt: skip
        if net is not None:
            super().__init__(num_classes, optimizer, scheduler, label_smoothing)
            self.net, self.init_record = net, init
            self.set_speed_options(compile=compile, channels_last=channels_last)
            self.set_finetune(finetune)
            return
        if len(channels) != 4 or len(layers) != 4:
            raise ValueError(
                f"model.channels={list(channels)} and model.layers={list(layers)} need 4 entries each "
                f"(timm's ResNet has four stages); use 1 block in a stage to keep it small."
            )
        if stem_stride not in (1, 2):
            raise ValueError(f"model.stem_stride={stem_stride} must be 1 or 2.")
        super().__init__(num_classes, optimizer, scheduler, label_smoothing)
        # stem_type="deep" only to make timm size the stem output (stem_width * 2) to
        # channels[0]; its three-conv stem and max-pool are replaced just below.
        self.net = ResNet(
            block=BasicBlock,
            layers=layers,
            channels=channels,
            in_chans=in_chans,
            num_classes=num_classes,
            stem_type="deep",
            stem_width=channels[0] // 2,
            drop_path_rate=drop_path_rate,
        )
        self.net.conv1 = nn.Conv2d(in_chans, channels[0], 3, stride=stem_stride, padding=1, bias=False)
        nn.init.kaiming_normal_(self.net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.net.maxpool = nn.Identity()
        self.set_speed_options(compile=compile, channels_last=channels_last)
        self.set_finetune(finetune)
