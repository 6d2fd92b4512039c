"""Each variant: output shape, ability to learn, and refusal of impossible shapes."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tiny_models import NUM_CLASSES, class_images, classifier, image_size, tiny_model

from vitbench.classification import ImageClassifier

VARIANTS = ["vit", "swin", "efficientvit", "cnn"]


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_gives_one_logit_per_class(name):
    model = tiny_model(name)
    x = torch.randn(3, 1, image_size(name), image_size(name))
    assert model(x).shape == (3, NUM_CLASSES)


@pytest.mark.parametrize("name", VARIANTS)
def test_overfits_one_batch(name, adamw):
    torch.manual_seed(0)
    model = tiny_model(name, optimizer=adamw)
    x, y = class_images(16, image_size(name))
    optimizer = model.configure_optimizers()
    model.train()
    losses = []
    for _ in range(30):
        loss, logits = model.training_loss(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert logits.shape == (16, NUM_CLASSES)
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", ["vit", "swin", "efficientvit", "cnn"])
def test_defaults_fit_fashion_mnist(name):
    """The network factories' defaults are the 28x28x1, 10-class configuration."""
    model = classifier(name)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_vit_refuses_patch_that_does_not_tile_the_image():
    with pytest.raises(
        ValueError,
        match=r"model.net.patch_size=5 does not divide data.img_size=28; use one of 1, 2, 4, 7, 14",
    ):
        classifier("vit", img_size=28, patch_size=5)


def test_vit_refuses_heads_that_do_not_divide_width():
    with pytest.raises(ValueError, match=r"model.net.embed_dim=100 .* model.net.num_heads=3"):
        classifier("vit", embed_dim=100, num_heads=3)


def test_swin_refuses_window_larger_than_grid():
    # 28 / 4 = 7x7 tokens: a window of 8 would be shrunk silently by timm.
    with pytest.raises(ValueError, match=r"model.net.window_size=8 .* set model.net.window_size <= 7"):
        classifier("swin", img_size=28, patch_size=4, window_size=8)


def test_swin_refuses_stages_past_a_1x1_grid():
    # 16 / 4 = 4 -> 2 -> 1: a fourth stage would only merge zero padding.
    with pytest.raises(ValueError, match=r"model.net.depths=.* use at most 3 stages"):
        classifier(
            "swin", img_size=16, patch_size=4, window_size=4, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8)
        )


def test_swin_refuses_mismatched_heads():
    with pytest.raises(ValueError, match=r"model.net.num_heads=\[2, 4\] needs one entry per stage"):
        classifier("swin", depths=(2, 2, 2), num_heads=(2, 4))


def test_swin_accepts_odd_stage_grids():
    # 28 / 2 = 14 -> 7 -> 4 (timm pads 7 to 8 before merging).
    model = classifier("swin", img_size=28, patch_size=2, embed_dim=16, depths=(1, 1, 1), num_heads=(1, 2, 4))
    assert [layer.input_resolution[0] for layer in model.net.layers[1:]] == [14, 7]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_efficientvit_refuses_collapse_to_1x1():
    # 28 -> 14 -> 7 -> 4 -> 2 -> 1 with five entries.
    with pytest.raises(
        ValueError, match=r"collapses to 1x1 .* keep at most 4 entries .* data.img_size \(at least 33\)"
    ):
        classifier("efficientvit", img_size=28, widths=(8, 16, 32, 64, 128), depths=(1, 1, 1, 1, 1))


def test_efficientvit_final_map_matches_the_check():
    model = classifier("efficientvit", img_size=33, widths=(8, 16, 16, 32), depths=(1, 1, 1, 1), head_dim=8)
    # ceil-halving 4 times: 33 -> 17 -> 9 -> 5 -> 3
    assert model.net.forward_features(torch.randn(1, 1, 33, 33)).shape[-2:] == (3, 3)


def test_efficientvit_refuses_configs_without_attention():
    with pytest.raises(ValueError, match=r"no stage uses attention"):
        classifier("efficientvit", widths=(8, 16, 32), depths=(1, 1, 1))


def test_hydra_config_gives_plain_hparams_that_rebuild_the_network():
    """What Hydra builds from model=swin's config (the network as a partial, lists converted) saves
    the network's plain config, from which load_from_checkpoint's constructor call rebuilds it."""
    config = OmegaConf.create(
        {
            "_target_": "vitbench.classification.ImageClassifier",
            "_convert_": "all",
            "net": {
                "_target_": "vitbench.classification.swin.swin", "_partial_": True, "img_size": 16, "patch_size": 2,
                "embed_dim": 16, "window_size": 4, "depths": [1, 1], "num_heads": [1, 2], "pretrained": None,
            },
        }
    )  # fmt: skip
    config.net.pop("pretrained")
    model = instantiate(config)
    saved = model.hparams["net"]
    assert saved["_target_"] == "vitbench.classification.swin.swin" and type(saved["depths"]) is list
    rebuilt = ImageClassifier(**model.hparams)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    assert all(k.startswith(("net.", "train_metrics.", "val_acc_best")) for k in model.state_dict())


def test_vit_with_average_pooling_has_no_class_token():
    small = dict(num_classes=10, img_size=28, in_chans=1, patch_size=7, embed_dim=32, depth=1, num_heads=2)
    model = classifier("vit", **small, global_pool="avg")
    assert model.net.cls_token is None and model.net.pos_embed.shape[1] == 16  # the 4x4 patches only
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="model.net.global_pool='max' must be token"):
        classifier("vit", **small, global_pool="max")
