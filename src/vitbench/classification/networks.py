"""The networks a classifier is built from (``model.net``), and where their keys lived before.

Each factory takes the data's ``num_classes``/``img_size``/``in_chans`` and its own shape keys, checks
them and returns the timm network; ``conf/model/net/<name>.yaml`` configures it. Before ``model.net``
these keys sat directly under ``model`` (``model.patch_size``): :data:`MOVED_KEYS`, derived from the
factories' signatures, lets ``vitbench-train`` name the new place of an old key on its command line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from vitbench.classification.cnn import resnet
from vitbench.classification.efficientvit import efficientvit
from vitbench.classification.pretrained import timm_network
from vitbench.classification.swin import swin
from vitbench.classification.vit import vit

NETWORKS = (vit, swin, efficientvit, resnet, timm_network)

# Keys that changed their name as they moved (timm's architecture; DeiT's loss, teacher, recipe).
RENAMED = {
    "model.timm_name": "model.net.name",
    "model.timm_args": "model.net.args",
    "model.optimizer.layer_decay": "model.layer_decay",
    "model.teacher.timm_name": "model.teacher.name",
    "model.distillation.kind": "model.criterion.kind",
    "model.distillation.alpha": "model.criterion.alpha",
    "model.distillation.tau": "model.criterion.tau",
    "model.dataset": "model.teacher.dataset",
}


def moved_keys(*factories: Callable[..., nn.Module]) -> dict[str, str]:
    """``model.<key>`` -> ``model.net.<key>`` for every argument of the network ``factories``."""
    return {
        f"model.{name}": f"model.net.{name}"
        for factory in factories
        for name, parameter in inspect.signature(factory).parameters.items()
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }


# (pretraining's denoiser read as a classifier has its own: vitbench.pretraining.denoiser_encoder.MOVED_KEYS)
MOVED_KEYS = {**moved_keys(*NETWORKS), **RENAMED}
