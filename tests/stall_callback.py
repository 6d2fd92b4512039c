"""A callback the resume test adds to a real `vitbench-train`: at a given step it writes a marker
file and waits, so the test can SIGKILL the process at a known point in the middle of an epoch."""

from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl


class StallAt(pl.Callback):
    def __init__(self, step: int, marker: str) -> None:
        self.step, self.marker = step, Path(marker)

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            self.marker.write_text(str(self.step))
            time.sleep(600)  # the test kills the process long before this ends
