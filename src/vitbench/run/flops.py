"""Forward FLOPs per image, counted by torch.utils.flop_counter."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_flop_count

# On the CPU, scaled_dot_product_attention dispatches to a kernel that the flop counter has
# no formula for, so attention would count as zero FLOPs; it costs what the GPU kernels cost.
_cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
if _cpu_sdpa is not None:
    try:

        @register_flop_formula(_cpu_sdpa)
        def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return sdpa_flop_count(query_shape, key_shape, value_shape)

    except RuntimeError:  # already registered by a newer torch
        pass


@torch.no_grad()
def forward_gflops(model: nn.Module, input_shape: tuple[int, int, int]) -> float:
    """GFLOPs of one forward pass of `model` on one image of shape (C, H, W), in eval mode.

    A multiply-add counts as two FLOPs, as in torch's counter and the papers' FLOP tables
    (note: timm's and the papers' "FLOPs" are often multiply-adds, half of this number).
    """
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype)
        with FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops() / 1e9
    finally:
        model.train(was_training)
