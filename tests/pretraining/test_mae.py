"""MAEModule: its encoder is model=vit's ViT by name and shape, it sees the visible patches only,
the optimizer trains the decoder too, and it learns."""

import pytest
import torch
from omegaconf import OmegaConf

from vitbench.classification import DeiTModule, ImageClassifier
from vitbench.pretraining import MAEModule
from vitbench.run.config import CONFIG_DIR

TINY = dict(
    img_size=16,
    patch_size=4,
    embed_dim=32,
    depth=2,
    num_heads=2,
    decoder_dim=16,
    decoder_depth=1,
    decoder_heads=2,
)


def test_the_encoder_loads_into_model_vit_with_only_the_head_missing():
    mae = MAEModule()  # the CPU defaults, as conf/model/mae.yaml
    vit = ImageClassifier({"_target_": "vitbench.classification.vit.vit", "num_classes": 10})
    result = vit.net.load_state_dict(mae.net.state_dict(), strict=False)
    assert result.unexpected_keys == [] and sorted(result.missing_keys) == ["head.bias", "head.weight"]
    for name, tensor in mae.net.state_dict().items():  # every tensor arrived, as it was
        assert torch.equal(vit.net.state_dict()[name], tensor), name
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(vit.net.forward_features(x), mae.net.forward_features(x))
    # In the module's own checkpoint the encoder is under net.*, the decoder beside it, nothing twice.
    keys = list(mae.state_dict())
    assert {k for k in keys if k.startswith("net.")} == {f"net.{k}" for k in mae.net.state_dict()}
    assert all(
        k.startswith(("net.", "decoder_embed.", "decoder.", "decoder_pred.", "val_loss")) for k in keys
    )


def test_deit_has_every_encoder_tensor_by_name_and_shape_but_its_longer_position_table():
    mae, deit = (
        MAEModule(),
        DeiTModule({"_target_": "vitbench.classification.vit.vit", "distilled": True, "num_classes": 10}),
    )
    theirs = deit.net.state_dict()
    assert set(mae.net.state_dict()) <= set(theirs)
    differ = [k for k, v in mae.net.state_dict().items() if theirs[k].shape != v.shape]
    assert differ == ["pos_embed"]  # DeiT's has one more row, for its distillation token


def test_the_encoder_config_is_model_vit():
    vit, mae = (  # model=vit's network keys are model.net's
        OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "model" / f"{m}.yaml")) for m in ("net/vit", "mae")
    )
    for key in (
        "patch_size",
        "embed_dim",
        "depth",
        "num_heads",
        "mlp_ratio",
        "drop_path_rate",
        "global_pool",
        "img_size",
        "in_chans",
    ):
        assert mae[key] == vit[key], key


def test_the_encoder_runs_on_the_visible_tokens_only():
    mae = MAEModule(**TINY, mask_ratio=0.75)  # 16 patches, 4 visible
    seen = []
    mae.net.blocks[0].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    pred = mae(torch.randn(2, 1, 16, 16))
    assert seen == [torch.Size([2, 1 + 4, 32])]  # the class token and 4 patches
    assert pred.shape == (2, 16, 4 * 4)  # and the decoder predicts every patch
    no_class_token = MAEModule(**TINY, mask_ratio=0.5, global_pool="avg")
    seen.clear()
    no_class_token.net.blocks[0].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    no_class_token(torch.randn(2, 1, 16, 16))
    assert seen == [torch.Size([2, 8, 32])]


def test_the_visible_patches_reach_the_decoder_in_their_places():
    """A reconstruction depends on a visible patch, never on a masked one."""
    torch.manual_seed(0)
    mae = MAEModule(**TINY, mask_ratio=0.75).eval()
    x = torch.randn(1, 1, 16, 16)
    idx_keep = torch.tensor([[0, 5, 10, 15]])
    base = mae.reconstruct(x, idx_keep)
    hidden, shown = x.clone(), x.clone()
    hidden[..., 4:8, 0:4] += 5.0  # patch 4: masked
    shown[..., 4:8, 4:8] += 5.0  # patch 5: visible
    assert torch.equal(mae.reconstruct(hidden, idx_keep), base)
    assert not torch.allclose(mae.reconstruct(shown, idx_keep), base)


def test_compile_would_compile_what_the_forward_pass_calls():
    mae = MAEModule(**TINY)
    called = []
    for module in mae.compiled_modules():
        module.register_forward_hook(lambda module, args, out: called.append(module))
    mae(torch.randn(2, 1, 16, 16))
    assert called == mae.compiled_modules()  # the encoder's blocks, then the decoder


def test_the_optimizer_trains_encoder_and_decoder_each_once():
    mae = MAEModule(**TINY)
    groups = mae.configure_optimizers().param_groups
    assert [g["name"] for g in groups] == ["no_decay", "decay"]
    optimized = [id(p) for g in groups for p in g["params"]]
    trainable = [id(p) for p in mae.parameters() if p.requires_grad]
    assert sorted(optimized) == sorted(trainable) and len(set(optimized)) == len(optimized)
    # MAE's fixed sin-cos position tables stay out of it.
    assert not mae.net.pos_embed.requires_grad and not mae.decoder.pos_embed.requires_grad


def test_the_loss_falls_when_one_batch_is_learned():
    torch.manual_seed(0)
    mae = MAEModule(**TINY, mask_ratio=0.5)
    opt = torch.optim.AdamW([p for p in mae.parameters() if p.requires_grad], lr=1e-2)
    x = torch.randn(8, 1, 16, 16)
    losses = []
    for _ in range(100):
        loss, _ = mae.training_loss(x, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.4 * losses[0], losses[::10]


def test_training_masks_follow_seed_epoch_and_batch_so_a_resume_repeats_them():
    mae = MAEModule(**TINY)
    x = torch.randn(4, 1, 16, 16)
    steps = [mae.training_step((x, torch.zeros(4)), batch_idx) for batch_idx in (0, 0, 1)]
    assert steps[0] == steps[1] and steps[0] != steps[2]


def test_bad_decoder_shapes_name_the_keys():
    with pytest.raises(
        ValueError,
        match=r"model.decoder_dim=30 is not divisible by model.decoder_heads=4; choose model.decoder_heads among the divisors of 30",
    ):
        MAEModule(**{**TINY, "decoder_dim": 30, "decoder_heads": 4})
    with pytest.raises(ValueError, match="model.decoder_depth=0 must be >= 1"):
        MAEModule(**{**TINY, "decoder_depth": 0})
    with pytest.raises(ValueError, match=r"model.mask_ratio=1.5 must lie in \[0, 1\)"):
        MAEModule(**TINY, mask_ratio=1.5)
