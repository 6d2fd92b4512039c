"""A small ResNet network (``model.net``): the CNN baseline and the DeiT teacher."""

from __future__ import annotations

from collections.abc import Sequence

from timm.models.resnet import BasicBlock, ResNet
from torch import nn

from vitbench.classification.vit import NET
from vitbench.run.checks import check_rate


def resnet(
    num_classes: int = 10,
    in_chans: int = 1,
    channels: Sequence[int] = (32, 64, 128, 256),
    layers: Sequence[int] = (1, 1, 1, 1),
    stem_stride: int = 2,
    drop_path_rate: float = 0.0,
) -> nn.Module:
    """ResNet with basic blocks (He et al., 2016, "Deep Residual Learning for Image
    Recognition"), timm's implementation with a small-image stem.

    Small-image adaptation: ImageNet's 7x7 stride-2 stem and 3x3 max-pool divide the side
    by 4 before the first stage, so 28 px would reach 1x1 in the last stage. Here the stem
    is one 3x3 conv of stride ``stem_stride`` (2 by default: 28 -> 14) and there is no
    max-pool; the four stages then run at 14, 7, 4 and 2 px. ``stem_stride=1`` is the
    CIFAR-style ResNet (stages at 28..4 px): more accurate, about 4x the compute. The
    default (widths 32..256, one block per stage, 1.2M parameters) trains at ~1700
    images/s at batch 256 on two CPU cores. No timm architecture has this stem, so
    ``vitbench-export`` writes it as ONNX only.

    Shapes: ``x (B, in_chans, H, W)`` -> logits ``(B, num_classes)``; stage ``i`` outputs
    ``(B, channels[i], H / (stem_stride * 2**i), ...)`` (ceil).

    Args:
        num_classes: Number of classes.
        in_chans: Image channels (``data.channels``).
        channels: Widths of the four stages.
        layers: Basic blocks in each of the four stages.
        stem_stride: Stride of the 3x3 stem conv, 1 or 2.
        drop_path_rate: Stochastic-depth rate of the last block.
    """
    check_rate(f"{NET}.drop_path_rate", drop_path_rate, "0.05")
    channels, layers = tuple(int(c) for c in channels), tuple(int(n) for n in layers)
    if len(channels) != 4 or len(layers) != 4:
        raise ValueError(
            f"{NET}.channels={list(channels)} and {NET}.layers={list(layers)} need 4 entries each "
            f"(timm's ResNet has four stages); use 1 block in a stage to keep it small."
        )
    if stem_stride not in (1, 2):
        raise ValueError(f"{NET}.stem_stride={stem_stride} must be 1 or 2.")
    # stem_type="deep" only to make timm size the stem output (stem_width * 2) to
    # channels[0]; its three-conv stem and max-pool are replaced just below.
    net = ResNet(
        block=BasicBlock,
        layers=layers,
        channels=channels,
        in_chans=in_chans,
        num_classes=num_classes,
        stem_type="deep",
        stem_width=channels[0] // 2,
        drop_path_rate=drop_path_rate,
    )
    net.conv1 = nn.Conv2d(in_chans, channels[0], 3, stride=stem_stride, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    return net
