"""Throughput over timed windows: vitbench's fit (a callback), a bare PyTorch loop, inference, matmul.

Every measurement follows one protocol (:class:`Windows`): ``warmup`` batches that are not
timed (allocator, kernel selection, lazy init), then ``repeats`` windows of ``steps`` batches.
A window's throughput is its images over its wall time, so costs that come every few steps
(logging every ``log_every_n_steps``) stay in it; the median over windows drops the rare
outlier (an epoch boundary with its checkpoint). On a GPU the clock is read after a
``synchronize`` at window boundaries only, so queued kernels are not cut off.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import Tensor


@dataclass(frozen=True)
class Windows:
    """``warmup`` untimed batches, then ``repeats`` timed windows of ``steps`` batches each."""

    warmup: int
    steps: int
    repeats: int

    def __post_init__(self) -> None:
        for name, value in (("warmup_steps", self.warmup), ("steps", self.steps), ("repeats", self.repeats)):
            if value < 1:
                raise ValueError(
                    f"bench.{name}={value} must be >= 1 (the first batch holds one-off costs; "
                    "a window needs a batch; a median needs a timing)."
                )

    @property
    def total(self) -> int:
        """Batches to run in all."""
        return self.warmup + self.steps * self.repeats

    def is_boundary(self, done: int) -> bool:
        """Whether the clock is read after ``done`` batches: the end of warm-up or of a window."""
        return done >= self.warmup and (done - self.warmup) % self.steps == 0


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def window_rates(marks: list[tuple[float, int]]) -> list[float]:
    """Images/s of each window from ``(time, images so far)`` marks at the window boundaries."""
    return [(n1 - n0) / (t1 - t0) for (t0, n0), (t1, n1) in zip(marks, marks[1:], strict=False)]


class WindowTimer(pl.Callback):
    """Marks the clock at window boundaries of a fit; keeps every batch's training loss.

    The interval between two marks holds everything the Trainer does for those batches:
    fetching, augmenting, forward, backward, optimizer and scheduler step, metrics, logging,
    progress bar and any callback.
    """

    def __init__(self, windows: Windows) -> None:
        self.windows = windows
        self.batches = 0
        self.images = 0
        self.marks: list[tuple[float, int]] = []
        self.losses: list[Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.batches += 1
        if self.batches > self.windows.warmup:
            self.images += len(batch[0])
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(loss.detach())
        if self.windows.is_boundary(self.batches):
            synchronize(pl_module.device)
            self.marks.append((time.perf_counter(), self.images))

    @property
    def images_per_s(self) -> list[float]:
        """Images/s of each complete window (fewer than ``repeats`` if the fit stopped early)."""
        return window_rates(self.marks)


def run_windows(
    step: Callable[[], None], windows: Windows, batch_size: int, device: torch.device
) -> list[float]:
    """Call ``step`` (one batch of ``batch_size`` images) ``windows.total`` times; images/s per window."""
    marks = []
    for done in range(1, windows.total + 1):
        step()
        if windows.is_boundary(done):
            synchronize(device)
            marks.append((time.perf_counter(), (done - windows.warmup) * batch_size))
    return window_rates(marks)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast that Lightning's ``trainer.precision`` implies, so the bare loop computes alike."""
    dtypes = {"32-true": None, "32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
    if precision not in dtypes:
        raise ValueError(
            f"trainer.precision={precision!r} has no bare-loop counterpart in vitbench-bench; "
            f"use one of {', '.join(dtypes)}."
        )
    dtype = dtypes[precision]
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def bare_training(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    windows: Windows,
    precision: str = "32-true",
) -> tuple[list[float], list[float]]:
    """Train on one in-memory batch with no framework: forward, loss, backward, step, zero_grad.

    The loss is the model's own ``training_loss(x, y)`` (cross-entropy with its label
    smoothing; DeiT adds its teacher's forward and the distillation term), so both paths
    optimize the same objective. No scheduler step, no metrics, no logging.

    Args:
        x: normalized float images ``(B, C, H, W)`` on the model's device; y: labels ``(B,)``.

    Returns:
        Images/s of each window, and the loss of every step.
    """
    model.train()
    losses: list[Tensor] = []

    def step() -> None:
        with autocast(precision, x.device):
            loss, _ = model.training_loss(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.detach())

    rates = run_windows(step, windows, len(x), x.device)
    return rates, [float(v) for v in losses]


def inference(model: torch.nn.Module, x: Tensor, windows: Windows, precision: str = "32-true") -> list[float]:
    """Images/s of each window of ``model(x)`` in eval mode under ``no_grad``; x: ``(B, C, H, W)``."""
    model.eval()
    try:
        with torch.no_grad(), autocast(precision, x.device):
            return run_windows(lambda: model(x), windows, len(x), x.device)
    finally:
        model.train()


def matmul_gflop_per_s(n: int, repeats: int, device: torch.device) -> float:
    """The machine's fp32 matmul speed: median time of ``repeats`` ``(n, n) @ (n, n)``, 2 n^3 FLOPs each.

    On a GPU this honours ``torch.set_float32_matmul_precision`` (TF32 under "high"), as training does.
    """
    if n < 1 or repeats < 1:
        raise ValueError(
            f"bench.matmul_size={n} and bench.matmul_repeats={repeats} must be >= 1; 2048 and 10 are usual."
        )
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up: thread pool, kernel choice
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(seconds) / 1e9
