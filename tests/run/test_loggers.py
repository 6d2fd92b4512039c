"""The W&B logger of a resumed run: what the interrupted run logged is not logged again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import wandb

from vitbench.run.loggers import WandbLogger, history_items, logged_history


def logged_rows(run: Path) -> list[tuple[int, set[str]]]:
    """(trainer/global_step, keys) of each history row in a W&B run folder's log."""
    items = history_items(run)
    return [
        (i["trainer/global_step"], {k for k in i if k[0] != "_" and k != "trainer/global_step"})
        for i in items
    ]


@pytest.fixture
def own_wandb_service(monkeypatch):
    """W&B's service for this test only: wandb.init puts its address in os.environ (WANDB_SERVICE),
    where every process the later tests start would find it and share it."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    yield
    wandb.teardown()
    os.environ.pop("WANDB_SERVICE", None)


def test_a_resumed_run_logs_only_what_its_first_part_did_not(tmp_path, monkeypatch, own_wandb_service):
    monkeypatch.setenv("WANDB_MODE", "offline")  # and the logger sets it too; restored after the test
    first = wandb.init(mode="offline", dir=tmp_path, project="vitbench", id="abc123")
    for step in (1, 2, 3):
        first.log({"train/loss": 1.0 / step, "trainer/global_step": step})
    first.log({"val/acc": 0.5, "epoch": 0, "trainer/global_step": 3})  # a second row at step 3
    first.finish()
    wandb_dir = tmp_path / "wandb"
    assert logged_history(wandb_dir) == (3, frozenset({"train/loss", "val/acc", "epoch"}))
    assert logged_history(tmp_path / "nothing") == (-1, frozenset())

    # The resume trains again from a step-1 checkpoint: steps 2 and 3 were logged, 4 was not.
    logger = WandbLogger(
        project="vitbench", id="abc123", offline=True, save_dir=str(tmp_path), logged_in=str(wandb_dir)
    )
    for step in (2, 3, 4):
        logger.log_metrics({"train/loss": 1.0 / step}, step=step)
        if step == 3:
            logger.log_metrics({"val/acc": 0.5, "epoch": 0}, step=3)  # logged at step 3 already
            logger.log_metrics({"test/acc": 0.6, "epoch": 0}, step=3)  # a key step 3 did not log
    logger.experiment.finish()

    runs = sorted(wandb_dir.glob("offline-run-*"))
    second = [run for run in runs if run.name != Path(first.dir).parent.name]
    assert len(runs) == 2 and len(second) == 1
    assert logged_rows(second[0]) == [(3, {"test/acc", "epoch"}), (4, {"train/loss"})]
