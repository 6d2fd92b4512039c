"""A callback the DDP test adds to a real `vitbench-train`: each rank writes down the keys its
training sampler hands out in each epoch and how many images it trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl


class RecordShares(pl.Callback):
    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.images = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.images = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.images += len(batch[0])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loader = trainer.train_dataloader
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {
            "keys": list(loader.sampler),  # (epoch, index) pairs of this rank's share
            "sampler": type(loader.sampler).__name__,
            "batch_size": loader.batch_size,
            "images_trained": self.images,
            "train_images": len(loader.dataset),
        }
        path = self.folder / f"rank{trainer.global_rank}-epoch{trainer.current_epoch}.json"
        path.write_text(json.dumps(record))
