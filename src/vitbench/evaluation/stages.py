"""The output of every stage of a classifier's network as a feature map: what the effective receptive
field (:mod:`~vitbench.evaluation.receptive_field`) and CKA (:mod:`~vitbench.evaluation.cka`) read.

A stage is what timm's ``forward_intermediates`` returns for the network, named by its
``feature_info``: a ViT's (and DeiT's) blocks, with the patch tokens on their grid and the prefix
tokens (class, distillation, registers) left out; Swin's and EfficientViT's stages; the CNN's four
ResNet stages (its stem is left out). Each is ``(B, C, h, w)``, whatever layout the network keeps inside.
"""

from __future__ import annotations

from torch import Tensor, nn

from vitbench.evaluation.context import EvaluateError

STEM = {"act1"}  # timm's ResNet lists its stem's output before its four stages: not a stage


def stage_features(net: nn.Module, x: Tensor) -> dict[str, Tensor]:
    """Each stage's output of `net` for normalised images ``x (B, C, H, W)``: ``{name: (B, C_i, h_i, w_i)}``,
    first stage first (a ViT: ``{"blocks.0": (B, D, grid, grid), ...}``)."""
    if not hasattr(net, "forward_intermediates"):
        raise EvaluateError(
            f"a {type(net).__name__} has no forward_intermediates: its stages cannot be read "
            "(the locality part and --cka need one of timm's networks)."
        )
    features = net.forward_intermediates(x, intermediates_only=True)
    info = getattr(net, "feature_info", None)
    names = [entry["module"] for entry in info] if isinstance(info, list) else []
    if len(names) != len(features):  # a network without per-stage names: numbered instead
        names = [f"stage{i}" for i in range(len(features))]
    return {name: f for name, f in zip(names, features, strict=True) if name not in STEM}
