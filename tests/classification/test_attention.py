"""Attention rollout by hand, and timm's AttentionExtract on vitbench's ViT and DeiT: one softmax
map per block, equal to softmax(q k^T / sqrt(d)) computed by hand, the model left as it was."""

from __future__ import annotations

import pytest
import torch
from tiny_models import classifier

from vitbench.classification.attention import attention_maps, attention_rollout, token_attention

TINY_VIT = dict(num_classes=5, img_size=16, in_chans=1, patch_size=4, embed_dim=32, depth=2, num_heads=2)


def test_rollout_matches_a_hand_computation():
    # Layer 1: two heads whose average is [[.5, .5], [.2, .8]]; layer 2: one head.
    layer1 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.4, 0.6]]])[None]  # (1, 2, 2, 2)
    layer2 = torch.tensor([[1.0, 0.0], [0.4, 0.6]])[None, None]  # (1, 1, 2, 2)
    # (A + I) / 2 per layer: [[.75, .25], [.1, .9]] and [[1, 0], [.2, .8]]; the product, last layer on the left:
    expected = torch.tensor([[0.75, 0.25], [0.2 * 0.75 + 0.8 * 0.1, 0.2 * 0.25 + 0.8 * 0.9]])
    assert torch.allclose(attention_rollout([layer1, layer2])[0], expected)
    # One layer alone is its head average mixed half and half with the identity.
    assert torch.allclose(attention_rollout([layer2])[0], torch.tensor([[1.0, 0.0], [0.2, 0.8]]))


def test_rollout_rows_sum_to_one():
    g = torch.Generator().manual_seed(0)
    layers = [torch.randn(3, 4, 6, 6, generator=g).softmax(-1) for _ in range(5)]
    rollout = attention_rollout(layers)
    assert rollout.shape == (3, 6, 6) and (rollout >= 0).all()
    assert torch.allclose(rollout.sum(-1), torch.ones(3, 6))


def test_extract_captures_each_blocks_softmax_attention():
    torch.manual_seed(0)
    net = classifier("vit", **TINY_VIT).net.eval()  # fused attention on: vitbench's default
    x = torch.randn(3, 1, 16, 16)
    maps = attention_maps(net, x)
    assert len(maps) == 2 and all(m.shape == (3, 2, 17, 17) for m in maps)  # (B, heads, 1 + 16 patches, ...)
    assert torch.allclose(maps[1].sum(-1), torch.ones(3, 2, 17))
    # Block 0's attention by hand: softmax(q k^T / sqrt(head_dim)) of its normalized input tokens.
    with torch.no_grad():
        tokens = net.norm_pre(net._pos_embed(net.patch_embed(x)))  # (B, 17, 32)
        attn = net.blocks[0].attn
        q, k, _ = attn.qkv(net.blocks[0].norm1(tokens)).reshape(3, 17, 3, 2, 16).permute(2, 0, 3, 1, 4)
        expected = (q @ k.transpose(-2, -1) / 16**0.5).softmax(-1)  # (B, heads, 17, 17)
    assert torch.allclose(maps[0], expected, atol=1e-5)


def test_extraction_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = classifier("vit", **TINY_VIT)
    net = model.net.train()
    net.blocks[1].eval()  # a mixed state, as Lightning keeps a frozen part in eval during fit
    x = torch.randn(2, 1, 16, 16)
    modes = {name: m.training for name, m in net.named_modules()}
    with torch.no_grad():
        before = net.eval()(x)
    net.train()
    net.blocks[1].eval()

    token_attention(net, x)

    assert {name: m.training for name, m in net.named_modules()} == modes
    assert all(m.fused_attn for m in net.modules() if hasattr(m, "fused_attn"))
    assert not any(m._forward_hooks for m in net.modules())
    with torch.no_grad():
        assert torch.equal(net.eval()(x), before)


@pytest.mark.parametrize(
    ("module", "kwargs", "tokens"),
    [
        ("vit", {}, ["class token"]),
        ("vit", {"global_pool": "avg"}, ["patch average"]),
        ("deit", {}, ["class token", "distillation token"]),
    ],
)
def test_each_readout_token_gets_a_map_on_the_patch_grid(module, kwargs, tokens):
    torch.manual_seed(0)
    net = classifier(module, **TINY_VIT, **kwargs).net
    maps = token_attention(net, torch.randn(3, 1, 16, 16))
    assert list(maps) == tokens
    for heat in maps.values():
        assert heat.shape == (3, 4, 4) and (heat >= 0).all()
        # A readout token's share of the patches: the rest of its row went to the prefix tokens.
        assert (heat.sum((1, 2)) <= 1 + 1e-6).all() and (heat.sum((1, 2)) > 0.1).all()


def test_a_compiled_net_is_extracted_eagerly():
    """compile=true: the extraction runs eagerly (no compilation, no recompile for the switch)."""
    torch.manual_seed(0)
    net = classifier("vit", **TINY_VIT).net.eval()
    net.compile()
    maps = attention_maps(net, torch.randn(2, 1, 16, 16))
    assert len(maps) == 2 and torch.allclose(maps[0].sum(-1), torch.ones(2, 2, 17))
    assert all(m.fused_attn for m in net.modules() if hasattr(m, "fused_attn"))
