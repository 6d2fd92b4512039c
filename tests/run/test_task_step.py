"""The training step every task shares (TaskModule.training_step): the task gives its loss, the
base checks it, updates the task's training metrics and logs ``train/loss`` on the logging steps."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vitbench.run.task import TaskModule


class TinyTask(TaskModule):
    def __init__(self, nan_at_batch: int | None = None) -> None:
        super().__init__()
        self.net = nn.Linear(4, 3)
        self.nan_at_batch = nan_at_batch
        self.metric_batches: list[tuple[int, tuple[int, ...]]] = []
        self.logged: list[tuple[int, str]] = []

    def training_loss(self, x, y):
        logits = self.net(x)  # (B, 3)
        return F.cross_entropy(logits, y), logits

    def step_loss(self, batch, batch_idx):
        loss, logits = super().step_loss(batch, batch_idx)
        return (loss * float("nan"), logits) if batch_idx == self.nan_at_batch else (loss, logits)

    def update_train_metrics(self, output, batch, batch_idx):
        self.metric_batches.append((batch_idx, tuple(output.shape)))

    def log(self, name, value, *args, **kwargs):
        self.logged.append((self.global_step, name))
        super().log(name, value, *args, **kwargs)


def _fit(model: TinyTask) -> None:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g))
    trainer = pl.Trainer(
        max_epochs=1, log_every_n_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(model, DataLoader(data, batch_size=4))


def test_every_batch_updates_the_metrics_and_the_loss_is_logged_on_logging_steps_and_the_last():
    model = TinyTask()
    _fit(model)
    assert model.metric_batches == [(i, (4, 3)) for i in range(5)]
    # Steps 1 and 3 are the loggers' (every 2nd), step 4 is the epoch's last batch.
    assert model.logged == [(1, "train/loss"), (3, "train/loss"), (4, "train/loss")]


def test_a_non_finite_loss_stops_before_the_metrics_see_it():
    model = TinyTask(nan_at_batch=2)
    with pytest.raises(FloatingPointError, match=r"the training loss is nan at step 2 \(epoch 0\)"):
        _fit(model)
    assert [i for i, _ in model.metric_batches] == [0, 1]
