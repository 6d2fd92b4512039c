"""warmup_cosine: linear warm-up to the peak, cosine down to min_lr_ratio * peak; warmup_constant: JiT's."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from vitbench.run import warmup_cosine


def lrs_over(total_steps: int, lr: float = 1e-2, **kwargs) -> list[float]:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = warmup_cosine(optimizer, total_steps=total_steps, **kwargs)
    lrs = []
    for _ in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])  # the lr this step trains with
        optimizer.step()
        scheduler.step()
    return lrs


def test_rises_then_peaks_then_decays_to_min():
    lrs = lrs_over(100, lr=1e-2, warmup_fraction=0.1, min_lr_ratio=0.01)
    warmup, decay = lrs[:11], lrs[10:]
    assert all(a < b for a, b in pairwise(warmup))
    assert max(lrs) == pytest.approx(1e-2) and lrs[10] == pytest.approx(1e-2)
    assert all(a >= b for a, b in pairwise(decay))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.05)


def test_lasts_exactly_the_run():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_cosine(optimizer, total_steps=50, warmup_fraction=0.1, min_lr_ratio=0.1)
    for _ in range(50):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


@pytest.mark.parametrize("total_steps", [1, 2, 3])
def test_tiny_runs_do_not_crash(total_steps):
    lrs = lrs_over(total_steps, lr=1.0)
    assert all(0.0 < lr <= 1.0 for lr in lrs)


def test_refuses_bad_fraction():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="scheduler.warmup_fraction=1.5"):
        warmup_cosine(optimizer, total_steps=10, warmup_fraction=1.5)


def test_warmup_constant_rises_then_holds_the_base_lr():
    from vitbench.run import warmup_constant

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1e-3)
    scheduler = warmup_constant(optimizer, total_steps=100, warmup_fraction=0.05)  # 5 warm-up steps
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-3 / 6) and lrs[:6] == sorted(lrs[:6])
    assert all(lr == pytest.approx(1e-3) for lr in lrs[5:])
    with pytest.raises(ValueError, match="warmup_fraction=1.0 must lie in"):
        warmup_constant(optimizer, 100, warmup_fraction=1.0)
