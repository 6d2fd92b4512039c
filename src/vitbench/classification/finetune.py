"""Linear probing (``model.finetune=linear``): only the classifier trains on a frozen backbone.

The backbone's parameters are frozen (not in the optimizer), it stays in eval mode (batch norm
statistics and dropout as they were) and it runs under ``torch.no_grad`` (no graph, no gradients:
a step costs a forward pass and a linear layer). The classifier is what timm's ``get_classifier()``
returns (DeiT: its class and distillation heads); it reads the backbone's ``forward_head(...,
pre_logits=True)`` features, so the logits are those of ``net(x)`` (He et al. 2022, MAE, Sec. 4:
linear probing as the measure of frozen features).
"""

from __future__ import annotations

import inspect
from typing import Literal

from torch import nn

Finetune = Literal["full", "linear"]


def classifier_heads(net: nn.Module) -> list[nn.Module]:
    """The classifier layer(s) of a timm network, or ValueError naming why none can be found."""
    why = None
    get = getattr(net, "get_classifier", None)
    forward_head = getattr(net, "forward_head", None)
    if get is None or forward_head is None:
        why = "has no get_classifier() and forward_head() (timm's interface)"
    elif "pre_logits" not in inspect.signature(forward_head).parameters:
        why = "has a forward_head() without pre_logits, so its features before the classifier cannot be read"
    else:
        found = get()
        heads = list(found) if isinstance(found, tuple | list) else [found]
        heads = [h for h in heads if isinstance(h, nn.Module) and any(True for _ in h.parameters())]
        if heads:
            return heads
        why = f"returns {type(found).__name__} from get_classifier(), a classifier without weights"
    raise ValueError(
        f"model.finetune=linear: {type(net).__name__} {why}; linear probing needs the classifier layer. "
        "Use model.finetune=full, or a timm architecture (size=pretrained, model.net.name) whose classifier timm can name."
    )


def freeze_backbone(net: nn.Module, finetune: Finetune) -> None:
    """``linear``: every parameter of ``net`` but its classifier's frozen and ``net`` in eval mode;
    ``full``: nothing changes. ValueError for another value or a network without a findable head."""
    if finetune not in ("full", "linear"):
        raise ValueError(
            f"model.finetune={finetune!r} must be full (every weight trains) or linear (only the classifier, "
            "on the frozen backbone)."
        )
    if finetune == "full":
        return
    heads = classifier_heads(net)
    net.requires_grad_(False)
    for head in heads:
        head.requires_grad_(True)
    probe_modes(net, net.training)


def probe_modes(net: nn.Module, mode: bool) -> None:
    """Linear probing's train/eval modes for a run in ``mode``: ``net`` in eval mode (the frozen
    backbone's batch norm and dropout as evaluated), but for the modules that draw the input's
    randomness (``follows_run_mode = True``: the noise a denoiser read as a classifier adds to its
    input, ``model=jit_classifier``), which follow the run, as when every weight trains."""
    net.eval()
    for module in net.modules():
        if getattr(module, "follows_run_mode", False):
            module.train(mode)
