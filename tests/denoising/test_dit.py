"""The adaLN-Zero network: identity at initialisation, shapes, JiT's switches, timm's parts."""

import pytest
import torch
from timm.layers import Attention, PatchEmbed, SwiGLU

from vitbench.denoising.dit import DiT, DiTBlock, PaddedSwiGLU, modulate


def test_every_block_is_the_identity_and_the_output_is_zero_at_init():
    torch.manual_seed(0)
    net = DiT(img_size=28, patch_size=7, width=64, depth=3, num_heads=4)
    x, t, y = torch.randn(5, 1, 28, 28), torch.rand(5), torch.randint(0, 11, (5,))
    tokens = net.x_embedder(x) + net.pos_embed  # (5, 16, 64)
    c = net.t_embedder(t) + net.y_embedder(y)
    for block in net.blocks:
        assert torch.equal(block(tokens, c), tokens)  # exactly: every gate is 0
    assert torch.equal(net(x, t, y), torch.zeros_like(x))


def test_a_trained_block_uses_its_conditioning():
    torch.manual_seed(0)
    block = DiTBlock(32, 4, 2.0, qk_norm=False, norm="layer", mlp="gelu")
    torch.nn.init.normal_(block.adaLN_modulation[-1].weight, std=0.1)
    x = torch.randn(2, 4, 32)
    c1, c2 = torch.randn(2, 32), torch.randn(2, 32)
    assert not torch.allclose(block(x, c1), block(x, c2))


def test_modulate_is_scale_and_shift_per_sample():
    x = torch.ones(2, 3, 4)
    shift, scale = torch.tensor([[1.0] * 4, [0.0] * 4]), torch.tensor([[1.0] * 4, [-1.0] * 4])
    out = modulate(x, shift, scale)
    assert torch.equal(out[0], torch.full((3, 4), 3.0)) and torch.equal(out[1], torch.zeros(3, 4))


def test_unpatchify_inverts_patch_order():
    net = DiT(img_size=8, patch_size=4, in_chans=2, width=16, depth=1, num_heads=2)
    image = torch.arange(2 * 2 * 8 * 8, dtype=torch.float32).view(2, 2, 8, 8)
    # (N, C, H, W) -> (N, T, p*p*C) in the order unpatchify expects: token (gh, gw), then (p, q, c)
    patches = image.view(2, 2, 2, 4, 2, 4).permute(0, 2, 4, 3, 5, 1).reshape(2, 4, 32)
    assert torch.equal(net.unpatchify(patches), image)


def test_jit_switches_use_timm_parts():
    net = DiT(width=64, depth=2, num_heads=4, bottleneck_dim=16, qk_norm=True, norm="rms", mlp="swiglu")
    assert isinstance(net.x_embedder.proj_in, PatchEmbed) and net.x_embedder.proj_in.proj.out_channels == 16
    assert all(isinstance(b.attn, Attention) and isinstance(b.mlp, SwiGLU) for b in net.blocks)
    assert not isinstance(net.blocks[0].attn.q_norm, torch.nn.Identity)
    assert net(torch.randn(2, 1, 28, 28), torch.rand(2), torch.tensor([0, 10])).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("bottleneck", [None, 8])
def test_gradients_reach_every_parameter_by_the_third_step(bottleneck):
    torch.manual_seed(0)
    net = DiT(img_size=8, patch_size=4, width=32, depth=2, num_heads=2, bottleneck_dim=bottleneck)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, t, y = torch.randn(4, 1, 8, 8), torch.rand(4), torch.randint(0, 10, (4,))
    # adaLN-Zero opens up in order: step 1 trains only the zero output layer, step 2 the
    # modulations, and from step 3 gradients reach the attention, MLPs and embeddings.
    silent = []
    for _ in range(3):
        opt.zero_grad()
        ((net(x, t, y) - x) ** 2).mean().backward()
        opt.step()
        silent.append({n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()})
    assert silent[0] == {n for n, _ in net.named_parameters()} - {
        "final_layer.linear.weight",
        "final_layer.linear.bias",
    }
    assert "blocks.0.adaLN_modulation.1.weight" not in silent[1] and "blocks.0.attn.qkv.weight" in silent[1]
    assert silent[2] == set()


def test_padded_swiglu_is_timms_swiglu_with_the_same_tensors():
    torch.manual_seed(0)
    padded, plain = PaddedSwiGLU(32, 21), SwiGLU(32, hidden_features=21)  # 21 units: 3 of padding inside
    assert {k: v.shape for k, v in padded.state_dict().items()} == {
        k: v.shape for k, v in plain.state_dict().items()
    }
    plain.load_state_dict(padded.state_dict())
    x = torch.randn(4, 5, 32, requires_grad=True)
    out_padded, out_plain = padded(x), plain(x)
    torch.testing.assert_close(out_padded, out_plain, rtol=1e-5, atol=1e-6)
    grads = [
        torch.autograd.grad(out.square().sum(), [x, *m.parameters()])
        for out, m in ((out_padded, padded), (out_plain, plain))
    ]
    for a, b in zip(*grads, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_jit_uses_the_padded_swiglu_and_dit_a_gelu_mlp():
    jit = DiT(width=128, depth=1, num_heads=4, mlp="swiglu")
    assert isinstance(jit.blocks[0].mlp, PaddedSwiGLU) and jit.blocks[0].mlp.fc1_g.out_features == 341
    assert not isinstance(DiT(width=128, depth=1, num_heads=4).blocks[0].mlp, SwiGLU)
