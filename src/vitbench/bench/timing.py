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
import itertools
import statistics
import time
from collections.abc import Callable, Iterable
from copy import deepcopy
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
    """Times windows of a fit; keeps every batch's training loss.

    A window holds everything the Trainer does for its batches: fetching, augmenting, forward,
    backward, optimizer and scheduler step, metrics, logging, progress bar and any callback.
    At each window boundary (the end of warm-up, then of every window) the clock stops and
    ``between(first, device)`` runs (the bare loop's warm-up when ``first``, else one of its windows), so
    the two measurements alternate in time: a machine whose speed drifts (a shared host,
    turbo, thermal limits) slows both alike and their ratio stays honest.
    """

    def __init__(self, windows: Windows, between: Callable[[bool, torch.device], None] | None = None) -> None:
        self.windows, self.between = windows, between
        self.batches = 0
        self.images = 0
        self.rates: list[float] = []
        self.losses: list[Tensor] = []
        self._start: tuple[float, int] | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.batches += 1
        if self.batches > self.windows.warmup:
            self.images += len(batch[0])
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(loss.detach())
        if not self.windows.is_boundary(self.batches):
            return
        synchronize(pl_module.device)
        if self._start is not None:
            t0, n0 = self._start
            self.rates.append((self.images - n0) / (time.perf_counter() - t0))
        if self.between is not None:
            self.between(self._start is None, pl_module.device)
        synchronize(pl_module.device)
        self._start = (time.perf_counter(), self.images)

    @property
    def images_per_s(self) -> list[float]:
        """Images/s of each complete window (fewer than ``repeats`` if the fit stopped early)."""
        return self.rates


def run_windows(step: Callable[[], int], windows: Windows, device: torch.device) -> list[float]:
    """Call ``step`` (one batch; returns its number of images) ``windows.total`` times; images/s per window."""
    marks, images = [], 0
    for done in range(1, windows.total + 1):
        n = step()
        if done > windows.warmup:
            images += n
        if windows.is_boundary(done):
            synchronize(device)
            marks.append((time.perf_counter(), images))
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


class BareLoop:
    """A bare PyTorch training loop, run a window at a time: forward, loss, backward, step, zero_grad.

    It trains its own copy of the model (same weights and optimizer settings as vitbench's at
    the start) on one in-memory batch, so that it can run between vitbench's windows without
    touching the model being fitted. The loss is the model's own ``training_loss(x, y)``
    (cross-entropy with its label smoothing; DeiT adds its teacher's forward and the
    distillation term; a denoiser its flow-matching loss), so both paths optimize the same
    objective, and after each step it does what the model does after every optimizer step (a
    denoiser's EMA update). No scheduler step, no metrics, no logging.

    Args:
        model: a vitbench ``TaskModule`` (a classifier or a denoiser); copied (the original is left alone) unless ``copy=False``.
        x: normalized float images ``(B, C, H, W)``; y: labels ``(B,)``. Moved to the device on the first window.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        x: Tensor,
        y: Tensor,
        windows: Windows,
        precision: str = "32-true",
        copy: bool = True,
    ) -> None:
        self.model = deepcopy(model) if copy else model
        self.model.configure_model()  # model.compile: compiled as the Trainer compiles vitbench's copy
        self.model.scheduler_factory = None  # configure_optimizers then needs no Trainer
        optimizer = self.model.configure_optimizers()
        self.optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
        self.x, self.y, self.windows, self.precision = x, y, windows, precision
        self.rates: list[float] = []
        self.losses: list[Tensor] = []  # kept on the device: reading one per step would wait for a GPU

    def step(self) -> None:
        with autocast(self.precision, self.x.device):
            loss, _ = self.model.training_loss(self.x, self.y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.model.after_optimizer_step()  # a denoiser's EMA update, as in vitbench's step
        self.losses.append(loss.detach())

    def __call__(self, warmup: bool, device: torch.device | None = None) -> None:
        """Run the warm-up (untimed) or one timed window."""
        if warmup:
            device = device or self.x.device
            self.model.to(device).train()
            self.x, self.y = self.x.to(device), self.y.to(device)
            for _ in range(self.windows.warmup):
                self.step()
            return
        synchronize(self.x.device)
        start = time.perf_counter()
        for _ in range(self.windows.steps):
            self.step()
        synchronize(self.x.device)
        self.rates.append(self.windows.steps * len(self.x) / (time.perf_counter() - start))


def data_pipeline(loader: Iterable, augment: Callable, windows: Windows, device: torch.device) -> list[float]:
    """Images/s of each window of the training input alone: loader batches moved to ``device``
    and augmented (crop, flip, mixup, normalize) as the model would receive them, no model.

    The loader is iterated again when an epoch ends (``itertools.cycle`` would keep every batch of
    the first epoch: gigabytes for a streamed folder at 224 px, and later epochs not read at all).
    """
    batches = (batch for _ in itertools.count() for batch in loader)

    def step() -> int:
        x, y = next(batches)
        x, _ = augment(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        return len(x)

    return run_windows(step, windows, device)


def inference(model: torch.nn.Module, x: Tensor, windows: Windows, precision: str = "32-true") -> list[float]:
    """Images/s of each window of ``model(x)`` in eval mode under ``no_grad``; x: ``(B, C, H, W)``."""
    model.eval()
    try:
        with torch.no_grad(), autocast(precision, x.device):
            return run_windows(lambda: len(model(x)), windows, x.device)
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
