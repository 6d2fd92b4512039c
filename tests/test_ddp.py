"""`trainer=ddp`: two CPU processes (gloo) train one run, write one record, and work under `-m`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl

from vitbench.classification import ImageClassifier
from vitbench.data import ImageDataModule, Synthetic

VITBENCH_TRAIN = Path(sys.executable).parent / "vitbench-train"
TINY = (
    "data=synthetic",
    "model.net.embed_dim=32",
    "model.net.depth=2",
    "model.net.num_heads=2",
    "trainer.max_epochs=2",
)
# Two ranks of 16 images make the same global batch of 32 as one process.
DDP = ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "data.batch_size=16", "threads=1")
# Two processes that each start two more (the ranks) with gloo: ~30 s a test, in `make test-slow`.
pytestmark = pytest.mark.slow


def run(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    proc = subprocess.run(
        [str(VITBENCH_TRAIN), *overrides], cwd=cwd, env=env, capture_output=True, text=True, timeout=400
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_two_cpu_processes_train_one_run(tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    run(*TINY, "seed=4", "data.batch_size=32", f"hydra.run.dir={single}", cwd=tmp_path)
    run(*TINY, *DDP, "seed=4", f"hydra.run.dir={ddp}", cwd=tmp_path)

    # One record and one W&B run, written by rank 0 only.
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("results.json"))
    assert written == ["ddp/results.json", "single/results.json"]
    assert len(list((ddp / "wandb").glob("offline-run-*"))) == 1
    record = json.loads((ddp / "results.json").read_text())

    # The test accuracy was gathered from both ranks: it is the accuracy of the best checkpoint on
    # the whole test split, as one process measures it.
    (best,) = (ddp / "checkpoints").glob("best-*.ckpt")
    model = ImageClassifier.load_from_checkpoint(best, map_location="cpu", weights_only=True)
    data = ImageDataModule(Synthetic(), img_size=28, in_chans=1, num_classes=10, mean=[0.5], std=[0.25],
                           val_size=128, batch_size=32)  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    (tested,) = trainer.test(model, datamodule=data, verbose=False)
    assert record["test_acc"] == pytest.approx(tested["test/acc"], abs=1e-6)

    # Same global batch, different shuffles: the result matches one process within noise.
    reference = json.loads((single / "results.json").read_text())
    assert abs(record["test_acc"] - reference["test_acc"]) <= 0.1
    assert record["test_acc"] > 0.2  # it learned (chance is 0.1)


def test_ddp_jobs_of_a_multirun_do_not_rerun_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    run("-m", *TINY, *DDP, "trainer.max_epochs=1", "seed=1,2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    # Besides the jobs, the sweep's wandb/ folder of links (one W&B run per job, rank 0's only).
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name != "wandb")
    assert len(jobs) == 2, jobs
    assert len(list((sweep / "wandb").glob("offline-run-*"))) == 2
    for job in jobs:
        assert (sweep / job / "results.json").is_file()
    # The ranks-1 processes ran their job in its folder: no other run or sweep folder appeared.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
