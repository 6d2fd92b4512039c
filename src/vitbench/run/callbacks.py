"""Callbacks that measure what results.json reports."""

from __future__ import annotations

import time

import pytorch_lightning as pl


class TrainSpeed(pl.Callback):
    """Training images per second, data loading and augmentation included.

    Each training batch is timed from the end of the previous one (or the start of its epoch)
    to its own end, so the interval holds fetching, augmenting, forward, backward and the
    optimizer step, and never validation, which runs between epochs. The first batch of the
    fit is one-off warm-up (allocator, kernels, lazy init) and counts only when it is the
    only batch there is.
    """

    def __init__(self) -> None:
        self.images = 0
        self.seconds = 0.0
        self._warmup: tuple[int, float] | None = None
        self._last_end = 0.0

    @property
    def images_per_s(self) -> float | None:
        images, seconds = (self.images, self.seconds) if self.seconds > 0 else (self._warmup or (0, 0.0))
        return images / seconds if seconds > 0 else None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_end = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        now = time.perf_counter()
        images, seconds = len(batch[0]) * trainer.world_size, now - self._last_end
        if self._warmup is None:
            self._warmup = (images, seconds)
        else:
            self.images += images
            self.seconds += seconds
        self._last_end = now

    def state_dict(self) -> dict:
        return {"images": self.images, "seconds": self.seconds, "warmup": self._warmup}

    def load_state_dict(self, state_dict: dict) -> None:
        self.images, self.seconds = state_dict["images"], state_dict["seconds"]
        self._warmup = state_dict.get("warmup")
