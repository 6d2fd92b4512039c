"""A callback the resume test adds to a real `vitbench-train`: at a given step it writes a marker
file and waits, so the test can SIGKILL the process at a known point in the middle of an epoch."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytorch_lightning as pl


class StallAt(pl.Callback):
    """Stalls at `step`; with `seed`, only in the run of that seed (one job of a sweep)."""

    def __init__(self, step: int, marker: str, seed: int | None = None) -> None:
        self.step, self.marker, self.seed = step, Path(marker), seed

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        # seed_everything (vitbench-train does it first) leaves the run's seed in PL_GLOBAL_SEED.
        if self.seed is not None and os.environ.get("PL_GLOBAL_SEED") != str(self.seed):
            return
        if trainer.global_step == self.step:
            self.marker.write_text(str(self.step))
            time.sleep(600)  # the test kills the process long before this ends
