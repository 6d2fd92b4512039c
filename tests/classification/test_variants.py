"""Each variant: output shape, ability to learn, and refusal of impossible shapes."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from tiny_models import NUM_CLASSES, class_images, image_size, tiny_model

from vitbench.classification import CNNModule, EfficientViTModule, SwinModule, ViTModule

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


@pytest.mark.parametrize("cls", [ViTModule, SwinModule, EfficientViTModule, CNNModule])
def test_defaults_fit_fashion_mnist(cls):
    """The constructor defaults are the 28x28x1, 10-class configuration."""
    model = cls()
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_vit_refuses_patch_that_does_not_tile_the_image():
    with pytest.raises(
        ValueError, match=r"model.patch_size=5 does not divide data.img_size=28; use one of 1, 2, 4, 7, 14"
    ):
        ViTModule(img_size=28, patch_size=5)


def test_vit_refuses_heads_that_do_not_divide_width():
    with pytest.raises(ValueError, match=r"model.embed_dim=100 .* model.num_heads=3"):
        ViTModule(embed_dim=100, num_heads=3)


def test_swin_refuses_window_larger_than_grid():
    # 28 / 4 = 7x7 tokens: a window of 8 would be shrunk silently by timm.
    with pytest.raises(ValueError, match=r"model.window_size=8 .* set model.window_size <= 7"):
        SwinModule(img_size=28, patch_size=4, window_size=8)


def test_swin_refuses_stages_past_a_1x1_grid():
    # 16 / 4 = 4 -> 2 -> 1: a fourth stage would only merge zero padding.
    with pytest.raises(ValueError, match=r"model.depths=.* use at most 3 stages"):
        SwinModule(img_size=16, patch_size=4, window_size=4, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))


def test_swin_refuses_mismatched_heads():
    with pytest.raises(ValueError, match=r"model.num_heads=\[2, 4\] needs one entry per stage"):
        SwinModule(depths=(2, 2, 2), num_heads=(2, 4))


def test_swin_accepts_odd_stage_grids():
    # 28 / 2 = 14 -> 7 -> 4 (timm pads 7 to 8 before merging).
    model = SwinModule(img_size=28, patch_size=2, embed_dim=16, depths=(1, 1, 1), num_heads=(1, 2, 4))
    assert [layer.input_resolution[0] for layer in model.net.layers[1:]] == [14, 7]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_efficientvit_refuses_collapse_to_1x1():
    # 28 -> 14 -> 7 -> 4 -> 2 -> 1 with five entries.
    with pytest.raises(
        ValueError, match=r"collapses to 1x1 .* keep at most 4 entries .* data.img_size \(at least 33\)"
    ):
        EfficientViTModule(img_size=28, widths=(8, 16, 32, 64, 128), depths=(1, 1, 1, 1, 1))


def test_efficientvit_final_map_matches_the_check():
    model = EfficientViTModule(img_size=33, widths=(8, 16, 16, 32), depths=(1, 1, 1, 1), head_dim=8)
    # ceil-halving 4 times: 33 -> 17 -> 9 -> 5 -> 3
    assert model.net.forward_features(torch.randn(1, 1, 33, 33)).shape[-2:] == (3, 3)


def test_efficientvit_refuses_configs_without_attention():
    with pytest.raises(ValueError, match=r"no stage uses attention"):
        EfficientViTModule(widths=(8, 16, 32), depths=(1, 1, 1))


def test_hydra_lists_become_tuples_in_hparams():
    model = SwinModule(
        img_size=16,
        patch_size=2,
        embed_dim=16,
        window_size=4,
        depths=OmegaConf.create([1, 1]),
        num_heads=OmegaConf.create([1, 2]),
    )
    assert model.hparams["depths"] == (1, 1) and type(model.hparams["depths"]) is tuple
    assert type(model.hparams["num_heads"]) is tuple


def test_vit_with_average_pooling_has_no_class_token():
    small = dict(num_classes=10, img_size=28, in_chans=1, patch_size=7, embed_dim=32, depth=1, num_heads=2)
    model = ViTModule(**small, global_pool="avg")
    assert model.net.cls_token is None and model.net.pos_embed.shape[1] == 16  # the 4x4 patches only
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="model.global_pool='max' must be token"):
        ViTModule(**small, global_pool="max")
