"""timm's own architectures, made tiny by timm arguments, and weight files written in every form that
``model.net.pretrained`` reads (imported as a plain module by pytest's rootdir import mode)."""

from __future__ import annotations

from pathlib import Path

import safetensors.torch
import timm
import torch
from torch import nn

from vitbench.classification import DeiTModule, ImageClassifier

# variant -> (module, timm architecture with a pretrained tag, timm arguments that make it tiny).
# A 32 px input for all.
TIMM = {
    "vit": (ImageClassifier, "vit_tiny_patch16_224.augreg_in21k_ft_in1k", {"patch_size": 8, "depth": 1}),
    "deit": (DeiTModule, "deit_tiny_distilled_patch16_224.fb_in1k", {"patch_size": 8, "depth": 1}),
    "swin": (
        ImageClassifier, "swin_tiny_patch4_window7_224.ms_in1k",
        {"embed_dim": 16, "depths": (1, 1), "num_heads": (1, 2), "window_size": 4},
    ),
    "efficientvit": (
        ImageClassifier, "efficientvit_b0.r224_in1k",
        {"widths": (8, 16, 16, 32, 32), "depths": (1, 1, 1, 1, 1), "head_dim": 8, "head_widths": (32, 32)},
    ),
    "cnn": (ImageClassifier, "resnet18.a1_in1k", {"channels": (8, 16, 16, 32), "layers": (1, 1, 1, 1)}),
}  # fmt: skip
IMG = 32
FILE_CLASSES = 7  # the weights' head; the runs have NUM_CLASSES


def source_net(
    variant: str, in_chans: int = 3, img_size: int = IMG, num_classes: int = FILE_CLASSES, seed: int = 0
):
    """A timm model of the variant's tiny architecture with random weights (and random batch-norm
    statistics, so that loading them shows), in eval mode."""
    _, name, args = TIMM[variant]
    kwargs = dict(in_chans=in_chans, num_classes=num_classes, **args)
    if variant in ("vit", "deit", "swin"):
        kwargs["img_size"] = img_size
    torch.manual_seed(seed)
    net = timm.create_model(name, **kwargs)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return net.eval()


def module_for(
    variant: str,
    pretrained,
    num_classes: int,
    in_chans: int = 3,
    img_size: int = IMG,
    data_mean=None,
    data_std=None,
    **recipe,
):
    """The variant's classifier on timm's tiny architecture (model.net: timm_network) with ``pretrained`` weights."""
    cls, name, args = TIMM[variant]
    extra = {"img_size": img_size} if variant in ("vit", "deit", "swin") else {}
    net = {
        "_target_": "vitbench.classification.pretrained.timm_network", "name": name, "num_classes": num_classes,
        "in_chans": in_chans, "args": args, "pretrained": pretrained, "data_mean": data_mean, "data_std": data_std,
        **extra,
    }  # fmt: skip
    return cls(net, **recipe)


def classifier_names(variant: str) -> set[str]:
    """The state-dict names of the variant's classifier tensors."""
    names = timm.models.get_pretrained_cfg(TIMM[variant][1]).classifier
    names = (names,) if isinstance(names, str) else names
    return {f"{n}.{p}" for n in names for p in ("weight", "bias")}


def write_weights(net: nn.Module, form: str, folder: Path, monkeypatch=None, variant: str = "") -> object:
    """Save ``net`` in ``form`` under ``folder``; returns what ``model.pretrained`` is set to.

    Forms: ``safetensors``, ``pth`` and ``bin`` (torch.save of the state dict), ``hf`` (a
    ``save_for_hf`` folder), ``hub`` (a Hugging Face cache holding the tag's repository, read with
    HF_HUB_OFFLINE: ``monkeypatch`` points huggingface_hub at it; returns True).
    """
    from timm.models import save_for_hf

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    if form == "safetensors":
        safetensors.torch.save_file(state, folder / "weights.safetensors")
        return str(folder / "weights.safetensors")
    if form in ("pth", "bin"):
        torch.save(state, folder / f"weights.{form}")
        return str(folder / f"weights.{form}")
    if form == "hf":
        save_for_hf(net, str(folder / "hf"), safe_serialization=True)
        return str(folder / "hf")
    if form == "hub":
        write_hub_cache(folder / "hub", TIMM[variant][1], state)
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder / "hub"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        return True
    raise ValueError(form)


def write_hub_cache(cache: Path, timm_name: str, state: dict[str, torch.Tensor]) -> Path:
    """A Hugging Face hub cache (``HF_HOME/hub``) holding ``timm/<timm_name>``'s ``model.safetensors``
    in the layout huggingface_hub downloads into: ``models--timm--<name>/snapshots/<commit>/`` and
    ``refs/main`` naming the commit."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--timm--{timm_name}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(state, snapshot / "model.safetensors")
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot / "model.safetensors"
