"""Tiny models and data shared by the model tests (imported as a plain module by pytest's rootdir import mode)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from vitbench.classification import DeiTModule, ImageClassifier

NUM_CLASSES = 5

# Each variant's network factory (model.net's _target_).
FACTORIES = {
    "vit": "vitbench.classification.vit.vit",
    "swin": "vitbench.classification.swin.swin",
    "efficientvit": "vitbench.classification.efficientvit.efficientvit",
    "cnn": "vitbench.classification.cnn.resnet",
    "timm": "vitbench.classification.pretrained.timm_network",
}

# The smallest network arguments that still exercise every stage of each variant.
TINY = {
    "vit": dict(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0),
    "swin": dict(img_size=16, patch_size=2, embed_dim=16, depths=(1, 1), num_heads=(1, 2), window_size=4),
    "efficientvit": dict(img_size=20, widths=(8, 16, 16, 32), depths=(1, 1, 1, 1), head_dim=8, head_widths=(32, 32)),
    "cnn": dict(channels=(8, 16, 16, 32), layers=(1, 1, 1, 1)),
}  # fmt: skip
RECIPE = {"optimizer", "scheduler", "label_smoothing", "layer_decay", "finetune", "compile", "channels_last",
          "fused_attn", "criterion", "teacher"}  # fmt: skip


def net(name: str, **kwargs) -> dict:
    """The plain config of variant ``name``'s network (``model.net``)."""
    return {"_target_": FACTORIES[name], **kwargs}


def classifier(name: str, **kwargs) -> ImageClassifier:
    """The classifier of variant ``name`` (DeiT's module for ``deit``); ``kwargs`` that are not the
    recipe's go to its network."""
    recipe = {k: v for k, v in kwargs.items() if k in RECIPE}
    network = {k: v for k, v in kwargs.items() if k not in RECIPE}
    if name == "deit":  # DeiT's network: the ViT with a distillation token
        return DeiTModule(net("vit", distilled=True, **network), **recipe)
    return ImageClassifier(net(name, **network), **recipe)


def tiny_model(name: str, **overrides) -> ImageClassifier:
    tiny = TINY["vit" if name == "deit" else name]  # DeiT: the ViT with a distillation token
    return classifier(name, num_classes=NUM_CLASSES, in_chans=1, **{**tiny, **overrides})


def image_size(name: str) -> int:
    return TINY[name].get("img_size", 16)


def class_images(n: int, img_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised images ``(n, 1, S, S)`` whose class sets a bright square's position, and labels ``(n,)``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % NUM_CLASSES
    x = 0.3 * torch.randn(n, 1, img_size, img_size, generator=g)
    side = img_size // NUM_CLASSES
    for i, label in enumerate(y.tolist()):
        x[i, 0, :, label * side : (label + 1) * side] += 2.0
    return x, y


def loader(x: torch.Tensor, y: torch.Tensor, batch_size: int = 8) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)
