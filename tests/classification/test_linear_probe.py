"""model.finetune=linear: only the classifier trains; the backbone stays byte-identical, in eval mode,
out of the optimizer and without gradients."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from timm_weights import module_for, source_net, write_weights
from tiny_models import NUM_CLASSES, class_images, image_size, loader, tiny_model

from vitbench.classification.finetune import classifier_heads, freeze_backbone


def probe(name: str, **kwargs):
    return tiny_model(name, finetune="linear", **kwargs)


class BackboneWatch(Callback):
    """At every training step: the backbone in eval mode, and after backward no gradient on it."""

    def __init__(self) -> None:
        self.modes: set[bool] = set()

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.modes |= {m.training for m in module.net.modules()}

    def on_after_backward(self, trainer, module) -> None:
        heads = {id(p) for h in classifier_heads(module.net) for p in h.parameters()}
        grads = [p.grad is not None for p in module.net.parameters() if id(p) not in heads]
        assert not any(grads), "a backbone parameter got a gradient"


@pytest.mark.parametrize("name", ["vit", "deit", "swin", "efficientvit", "cnn"])
def test_only_the_head_trains(name, tmp_path, adamw):
    module = probe(name, optimizer=adamw)
    size = image_size("vit" if name == "deit" else name)
    x, y = class_images(64, size)
    heads = {n for n, p in module.net.named_parameters() if p.requires_grad}
    before = {k: v.clone() for k, v in module.net.state_dict().items()}  # batch-norm statistics included
    watch = BackboneWatch()

    trainer = pl.Trainer(
        default_root_dir=tmp_path, accelerator="cpu", max_steps=6, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[watch],
    )  # fmt: skip
    trainer.fit(module, loader(x, y))

    after = module.net.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed == heads  # every head tensor moved, nothing else did (bytes equal)
    optimized = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert optimized == {id(p) for n, p in module.net.named_parameters() if n in heads}
    assert watch.modes == {False}  # the backbone, dropout and batch norm in eval mode all along


@pytest.mark.parametrize("name", ["vit", "deit", "swin", "efficientvit", "cnn"])
def test_a_probe_computes_the_networks_logits(name):
    module = probe(name).eval()
    size = image_size("vit" if name == "deit" else name)
    x = torch.randn(4, 1, size, size)
    with torch.no_grad():
        assert torch.allclose(module(x), module.net(x), atol=1e-6)


def test_a_pretrained_timm_backbone_probes(tmp_path, adamw):
    module = module_for("cnn", write_weights(source_net("cnn"), "safetensors", tmp_path), NUM_CLASSES,
                        finetune="linear", optimizer=adamw)  # fmt: skip
    assert {n for n, p in module.net.named_parameters() if p.requires_grad} == {"fc.weight", "fc.bias"}
    assert not module.train().net.training


def test_a_network_without_a_findable_head_is_refused():
    with pytest.raises(ValueError, match="model.finetune=linear: Sequential has no get_classifier"):
        freeze_backbone(torch.nn.Sequential(torch.nn.Linear(2, 2)), "linear")
    with pytest.raises(ValueError, match="model.finetune='last' must be full .* or linear"):
        freeze_backbone(torch.nn.Linear(2, 2), "last")
