"""Learning-rate schedule shared by every variant."""

from __future__ import annotations

import functools
import math

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler, SequentialLR


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.05,
    min_lr_ratio: float = 0.01,
) -> LRScheduler:
    """Linear warm-up to the base lr, then cosine decay to ``min_lr_ratio * lr``.

    The recipe of DeiT (Touvron et al., 2021, "Training data-efficient image transformers
    & distillation through attention"), stepped per optimizer step instead of per epoch
    because short CPU runs have only a few epochs.

    Groups with different peaks (layer-wise lr decay, :mod:`vitbench.run.optim`) each follow the
    same factor of their own peak (:func:`warmup_cosine_factor`), so a group's lr stays its
    ``lr_scale`` times the base lr at every step.

    Args:
        optimizer: Optimizer whose groups' current ``lr`` is the peak lr.
        total_steps: Optimizer steps of the whole run (Lightning's
            ``trainer.estimated_stepping_batches``).
        warmup_fraction: Share of ``total_steps`` spent warming up, in [0, 1).
        min_lr_ratio: Final lr as a fraction of the peak lr, in [0, 1].

    Returns:
        A scheduler to step once per optimizer step.
    """
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"scheduler.warmup_fraction={warmup_fraction} must lie in [0, 1); 0.05 is usual.")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"scheduler.min_lr_ratio={min_lr_ratio} must lie in [0, 1]; 0.01 is usual.")
    total_steps = max(int(total_steps), 2)  # a 1- or 2-step debug run still gets both phases
    warmup_steps = min(max(1, round(warmup_fraction * total_steps)), total_steps - 1)
    if len({g.get("initial_lr", g["lr"]) for g in optimizer.param_groups}) > 1:
        factor = functools.partial(
            warmup_cosine_factor,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
            min_lr_ratio=min_lr_ratio,
        )
        return LambdaLR(optimizer, factor)
    # Start warm-up at 1/(warmup_steps + 1) of the peak so even a 1-step warm-up rises.
    warmup = LinearLR(
        optimizer, start_factor=1.0 / (warmup_steps + 1), end_factor=1.0, total_iters=warmup_steps
    )
    # eta_min is absolute in torch; all our groups share one lr, so the first group's is the peak.
    peak_lr = optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
    cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=min_lr_ratio * peak_lr)
    return SequentialLR(optimizer, schedulers=[warmup, cosine], milestones=[warmup_steps])


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """The lr of :func:`warmup_cosine` at optimizer step ``step`` as a fraction of the peak, in closed
    form: linear from ``1 / (warmup_steps + 1)`` to 1 over the warm-up, then cosine to ``min_lr_ratio``."""
    if step < warmup_steps:
        start = 1.0 / (warmup_steps + 1)
        return start + (1.0 - start) * step / warmup_steps
    progress = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * (1.0 + math.cos(math.pi * progress)) / 2


def warmup_constant(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float = 0.05
) -> LRScheduler:
    """Linear warm-up to the base lr, then constant: JiT's schedule (Li & He 2025, arXiv 2511.13720,
    training configuration and code: 5 warm-up epochs, then a constant lr; the EMA weights do what
    a decay would).

    Args:
        optimizer: Optimizer whose groups' current ``lr`` is the lr after warm-up.
        total_steps: Optimizer steps of the whole run.
        warmup_fraction: Share of ``total_steps`` spent warming up, in [0, 1).
    """
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"scheduler.warmup_fraction={warmup_fraction} must lie in [0, 1); 0.05 is usual.")
    warmup_steps = max(1, round(warmup_fraction * max(int(total_steps), 2)))
    # LinearLR holds its end factor (1.0) once its total_iters have passed.
    return LinearLR(
        optimizer, start_factor=1.0 / (warmup_steps + 1), end_factor=1.0, total_iters=warmup_steps
    )
