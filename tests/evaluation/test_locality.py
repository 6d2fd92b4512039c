"""The locality part: mean attention distance against its closed forms (uniform attention on a 4x4 grid
of 7 px cells, attention to itself, Swin's windows with and without the shift and the padding), the
effective receptive field's radii of networks whose gradients are known by hand, and the part on a
finished run."""

import json
import math
from itertools import product

import pytest
import torch
from torch import nn

from vitbench.classification.swin import swin
from vitbench.classification.vit import vit
from vitbench.evaluation.attention_distance import (
    attention_distances,
    distance_sums,
    uniform_distance,
    vit_layout,
)
from vitbench.evaluation.evaluate import main
from vitbench.evaluation.receptive_field import erf_radius, receptive_fields


def uniform_4x4_by_hand() -> float:
    """The mean distance between the centres of every (ordered) pair of cells of a 4x4 grid of 7 px
    cells, itself included, over the 28 px side: uniform attention's mean distance."""
    centres = [(7 * c + 3.5, 7 * r + 3.5) for r in range(4) for c in range(4)]
    return sum(math.dist(p, q) for p, q in product(centres, centres)) / len(centres) ** 2 / 28


def tiny_vit(distilled: bool = False) -> nn.Module:
    torch.manual_seed(0)
    return vit(img_size=28, patch_size=7, embed_dim=16, depth=2, num_heads=2, distilled=distilled).eval()


def uniform_attention(net: nn.Module) -> nn.Module:
    """Zero every query and key (and Swin's position bias): each softmax row becomes uniform over
    the keys it may see."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".qkv." in name or "relative_position_bias_table" in name:
                p.zero_()
    return net


def test_uniform_attention_on_a_4x4_grid_of_7px_cells_has_its_closed_form():
    layout = vit_layout(tiny_vit())  # a class token, then 16 patches
    uniform = torch.full(
        (1, 1, 17, 17), 1 / 17, dtype=torch.float64
    )  # the class token holds 1/17 of every row

    dist, mass, count = distance_sums(uniform, layout, side=28)

    assert uniform_4x4_by_hand() == pytest.approx(0.5020, abs=1e-4)  # 14.06 px, as the ViT paper's grid
    assert float(dist[0]) / count == pytest.approx(uniform_4x4_by_hand(), rel=1e-12)
    assert float(mass[0]) / count == pytest.approx(1 / 17, rel=1e-12)
    assert uniform_distance(layout, side=28) == pytest.approx(uniform_4x4_by_hand(), rel=1e-12)


def test_attention_to_itself_has_no_distance():
    itself = torch.eye(17)[None, None]  # (1, 1, 17, 17)
    dist, mass, count = distance_sums(itself, vit_layout(tiny_vit()), side=28)
    assert count == 16 and float(dist[0]) == 0.0 and float(mass[0]) == 0.0


@pytest.mark.parametrize("distilled, prefix", [(False, 1), (True, 2)])
def test_a_vit_and_a_deit_attending_uniformly_give_the_closed_form(distilled, prefix):
    net = uniform_attention(tiny_vit(distilled))
    x = torch.randn(3, 1, 28, 28)

    blocks = attention_distances(net, [x[:2], x[2:]])

    assert len(blocks) == 2
    for block in blocks:
        assert block.heads.tolist() == pytest.approx([uniform_4x4_by_hand()] * 2, rel=1e-6)
        assert block.prefix_mass.tolist() == pytest.approx([prefix / (16 + prefix)] * 2, rel=1e-6)
        assert block.uniform == pytest.approx(uniform_4x4_by_hand(), rel=1e-12)
    assert all(m.fused_attn for m in net.modules() if hasattr(m, "fused_attn"))  # left as it was


def test_swin_attends_within_its_windows_and_undoes_its_shift():
    # 16 px, patch 4: a 4x4 grid of 4 px cells in 2x2 windows; the second block is shifted by 1.
    torch.manual_seed(0)
    net = uniform_attention(
        swin(img_size=16, patch_size=4, embed_dim=8, depths=(2,), num_heads=(1,), window_size=2)
    )

    first, shifted = attention_distances(net.eval(), [torch.randn(2, 1, 16, 16)])

    # Unshifted: every query sees its 2x2 window, at 0, 4, 4 and 4 sqrt 2 px.
    assert float(first.heads[0]) == pytest.approx((2 + math.sqrt(2)) / 4 * 4 / 16, rel=1e-6)
    # Shifted: one window whole, two split by the mask into pairs (0 and 4 px), one into single tokens.
    by_hand = (4 * (2 + math.sqrt(2)) / 4 + 8 * 0.5 + 4 * 0) * 4 / 16 / 16
    assert float(shifted.heads[0]) == pytest.approx(by_hand, rel=1e-6)
    assert shifted.uniform == pytest.approx(by_hand, rel=1e-12)
    assert float(first.prefix_mass[0]) == float(shifted.prefix_mass[0]) == 0.0


def test_swin_padding_tokens_are_dropped_and_their_mass_recorded():
    # 28 px, patch 4: a 7x7 grid that timm pads to 8x8 for windows of 4.
    torch.manual_seed(0)
    net = uniform_attention(
        swin(img_size=28, patch_size=4, embed_dim=8, depths=(1,), num_heads=(1,), window_size=4)
    )

    (block,) = attention_distances(net.eval(), [torch.randn(1, 1, 28, 28)])

    # Windows of 16, 12, 12 and 9 image tokens: their queries give 0, 4/16, 4/16 and 7/16 to padding.
    assert float(block.prefix_mass[0]) == pytest.approx((24 * 4 / 16 + 9 * 7 / 16) / 49, rel=1e-6)
    assert float(block.heads[0]) == pytest.approx(block.uniform, rel=1e-6)


def test_a_network_without_softmax_attention_has_no_attention_distance():
    assert attention_distances(nn.Conv2d(1, 1, 3), [torch.zeros(1, 1, 8, 8)]) is None


class OneConv(nn.Module):
    """A one-stage network: a convolution with every weight 1 (2 output channels)."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel, padding=kernel // 2, bias=False)
        nn.init.ones_(self.conv.weight)

    def forward_intermediates(self, x: torch.Tensor, intermediates_only: bool = True) -> list[torch.Tensor]:
        return [self.conv(x)]


def test_the_receptive_field_radii_of_convolutions_known_by_hand():
    pixels = [torch.rand(2, 1, 8, 8), torch.rand(1, 1, 8, 8)]

    # 1x1: the gradient of the 2x2 centre units is the 4 centre pixels, sqrt(0.5) px from the centre.
    (point,) = receptive_fields(OneConv(1), lambda p: p, pixels).values()
    assert erf_radius(point, 0.5) == erf_radius(point, 0.9) == pytest.approx(math.sqrt(0.5) / 8)

    # 3x3 of ones: weights (1, 2, 2, 1) along each axis over pixels 2..5, 36 in all; the 4 centre
    # pixels hold 16 (44 %), the 8 at sqrt(2.5) px 16 more (89 %), the corners at sqrt(4.5) px the rest.
    (grad,) = receptive_fields(OneConv(3), lambda p: p, pixels).values()
    assert grad[2:6, 2:6].tolist() == (2 * torch.outer(*[torch.tensor([1.0, 2, 2, 1])] * 2)).tolist()
    assert grad.sum() == grad[2:6, 2:6].sum()
    assert erf_radius(grad, 0.5) == pytest.approx(math.sqrt(2.5) / 8)
    assert erf_radius(grad, 0.9) == pytest.approx(math.sqrt(4.5) / 8)


def test_the_part_records_every_block_and_stage_of_a_run_and_its_pictures(run):
    assert main([str(run), "--parts", "locality"]) == 0

    record = json.loads((run / "results.json").read_text())
    depth = len([k for k in record if k.startswith("attn_dist_block") and "head" not in k])
    assert depth >= 1 and record["attn_dist_last"] == record[f"attn_dist_block{depth - 1}"]
    heads = [record[k] for k in record if k.startswith("attn_dist_block0_head")]
    assert record["attn_dist_first"] == pytest.approx(sum(heads) / len(heads))
    assert record["attn_dist_uniform"] == pytest.approx(uniform_4x4_by_hand())  # the default ViT: 4x4 patches
    assert 0 < record["attn_prefix_mass"] < 1
    assert [f"erf50_stage{i}" in record for i in range(depth)] == [
        True
    ] * depth  # the ViT's blocks, for parity
    assert 0 < record["erf50_last"] <= record["erf90_last"] < 1
    assert record["evaluation"]["locality"]["pictures"] == [
        "pictures/attention_distance.png",
        "pictures/receptive_field.png",
    ]
    first = {k: v for k, v in record.items() if k.startswith(("attn_", "erf"))}
    assert main([str(run), "--parts", "locality", "--redo"]) == 0  # seeded: the same figures
    again = json.loads((run / "results.json").read_text())
    assert {k: again[k] for k in first} == first
