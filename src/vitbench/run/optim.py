"""The optimizer's parameter groups: weight decay on weights only, and layer-wise lr decay.

Layer-wise learning-rate decay (BEiT, Bao et al. 2022, arXiv 2106.08254; used to fine-tune MAE and
DeiT III) scales the lr of each block by ``layer_decay ** (depth - i)``: the head trains at the base
lr, the patch embedding at the smallest. timm's ``param_groups_layer_decay`` builds the groups and
gives each an ``lr_scale`` that only timm's own schedulers apply; here (``model.layer_decay``, an
argument of the module) each group starts at ``lr * lr_scale``, and vitbench's schedules
(:mod:`vitbench.run.schedule`) scale every group by the same factor, so the scale holds at every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from timm.optim import param_groups_layer_decay, param_groups_weight_decay
from torch import nn


def check_layer_decay(layer_decay: Any) -> float | None:
    """``model.layer_decay`` as a float in (0, 1], or None (off); ValueError otherwise."""
    if layer_decay is None:
        return None
    if isinstance(layer_decay, bool) or not isinstance(layer_decay, int | float) or not 0 < layer_decay <= 1:
        raise ValueError(
            f"model.layer_decay={layer_decay!r} must lie in (0, 1]: each block's lr is the one above "
            "it times this factor (0.65-0.75 when fine-tuning a ViT-B/S, as MAE and DeiT III; 1 or null: off)."
        )
    return float(layer_decay)


def param_groups(
    modules: Sequence[nn.Module], weight_decay: float, lr: float, layer_decay: float | None = None
) -> list[dict[str, Any]]:
    """Parameter groups of ``modules``' trainable parameters (frozen ones are left out).

    Without ``layer_decay``: two groups, ``decay`` and ``no_decay`` (norms, biases, position
    embeddings and tokens: each module's ``no_weight_decay()``). With it: timm's layer groups, named
    ``decay_x<scale>`` / ``no_decay_x<scale>``, each with ``lr = lr * lr_scale``.
    """
    groups: dict[str, dict[str, Any]] = {}
    for module in modules:
        no_decay_names = getattr(module, "no_weight_decay", lambda: set())()
        if layer_decay is None:
            found = param_groups_weight_decay(module, weight_decay, no_weight_decay_list=no_decay_names)
        else:
            found = param_groups_layer_decay(
                module, weight_decay, no_weight_decay_list=no_decay_names, layer_decay=layer_decay
            )
        for group in found:
            # Named so LearningRateMonitor logs lr/decay, lr/no_decay (and each layer's); one group a name.
            name = "decay" if group["weight_decay"] else "no_decay"
            if layer_decay is not None:
                name = f"{name}_x{group['lr_scale']:.4g}"
                group["lr"] = lr * group["lr_scale"]
            groups.setdefault(name, {**group, "params": [], "name": name})["params"] += group["params"]
    return list(groups.values())
