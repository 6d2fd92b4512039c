"""Layer-wise lr decay (model.layer_decay): timm's groups, each at base lr x its lr_scale at
every step of vitbench's own schedules."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from vitbench.classification import ImageClassifier
from vitbench.run import warmup_constant, warmup_cosine
from vitbench.run.optim import param_groups
from vitbench.run.schedule import warmup_cosine_factor

LR = 1e-3
SMALL_VIT = dict(img_size=16, patch_size=4, embed_dim=32, depth=3, num_heads=2, mlp_ratio=2.0)
NET = {"_target_": "vitbench.classification.vit.vit", "num_classes": 5, "in_chans": 1, **SMALL_VIT}


def configured(scheduler, layer_decay=0.75, total_steps=20):
    """A ViT's optimizer and scheduler as configure_optimizers builds them under a Trainer."""
    optimizer = functools.partial(torch.optim.AdamW, lr=LR, weight_decay=0.05)
    module = ImageClassifier(NET, optimizer=optimizer, scheduler=scheduler, layer_decay=layer_decay)
    module._trainer = SimpleNamespace(estimated_stepping_batches=total_steps)
    setup = module.configure_optimizers()
    return module, setup["optimizer"], setup["lr_scheduler"]["scheduler"]


def test_groups_follow_the_depth():
    module, optimizer, _ = configured(functools.partial(warmup_cosine, warmup_fraction=0.1))
    scales = sorted({g["lr_scale"] for g in optimizer.param_groups})
    # timm's layers of a 3-block ViT: the embeddings, 3 blocks, the final norm and head: 5 scales.
    assert scales == pytest.approx([0.75**4, 0.75**3, 0.75**2, 0.75, 1.0])
    head = next(g for g in optimizer.param_groups if any(p is module.net.head.weight for p in g["params"]))
    patch = next(
        g for g in optimizer.param_groups if any(p is module.net.patch_embed.proj.weight for p in g["params"])
    )
    assert head["lr_scale"] == 1.0 and patch["lr_scale"] == pytest.approx(0.75**4)
    assert {g["name"] for g in optimizer.param_groups} >= {"decay_x1", "no_decay_x0.3164"}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(module.net.parameters()))


@pytest.mark.parametrize(
    "scheduler",
    [functools.partial(warmup_cosine, warmup_fraction=0.2, min_lr_ratio=0.1), functools.partial(warmup_constant, warmup_fraction=0.2)],
    ids=["warmup_cosine", "warmup_constant"],
)  # fmt: skip
def test_each_groups_lr_is_the_base_lr_times_its_scale_at_every_step(scheduler):
    _, optimizer, sched = configured(scheduler, total_steps=20)
    reference = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)  # one group, no scales
    ref_sched = scheduler(reference, total_steps=20)
    for _ in range(20):
        optimizer.step()
        sched.step()
        reference.step()
        ref_sched.step()
        base = reference.param_groups[0]["lr"]
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(base * group["lr_scale"], rel=1e-9)


def test_the_closed_form_is_the_chained_schedule():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_cosine(optimizer, total_steps=57, warmup_fraction=0.1, min_lr_ratio=0.01)
    for step in range(57):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            warmup_cosine_factor(step, 6, 57, 0.01), abs=1e-12
        )
        optimizer.step()
        scheduler.step()


def test_without_layer_decay_the_groups_are_decay_and_no_decay():
    net = VisionTransformer(num_classes=5, in_chans=1, **SMALL_VIT)
    groups = param_groups([net], weight_decay=0.05, lr=LR)
    assert [g["name"] for g in groups] == ["no_decay", "decay"] and all("lr" not in g for g in groups)


@pytest.mark.parametrize("value", [0.0, 1.5, -0.2, True])
def test_layer_decay_outside_0_1_is_refused_at_construction(value):
    with pytest.raises(ValueError, match=r"model.layer_decay=.* must lie in \(0, 1\]"):
        ImageClassifier(NET, layer_decay=value)
