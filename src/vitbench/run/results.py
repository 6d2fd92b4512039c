"""The run record: results.json, the contract that vitbench-compare reads."""

from __future__ import annotations

import json
import os
import resource
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# The keys every run writes, whatever its task, in this order.
COMMON_KEYS = (
    "task",
    "model",
    "dataset",
    "seed",
    "overrides",
    "params",
    "gflops",
    "train_images_per_s",
    "peak_memory_mb",
    "wall_time_s",
)
# What each task's LightningModule adds (its `run_record`): the figures its comparison reads.
# A record without "task" was written before the key existed and is a classification run.
TASK_KEYS = {
    "classification": ("val_acc_best", "test_acc"),
    "denoising": (
        "val_loss_best",
        "fid",
        "fid_floor",
        "sample_acc",
        "n_samples",
        "sampling_steps",
        "cfg_scale",
        "sampling_images_per_s",
    ),
    # Self-supervised: the reconstruction loss, and the encoder's k-NN and linear-probe accuracy on
    # frozen features (any run gets the last two, and "probe", from vitbench-probe).
    "pretraining": ("val_loss_best", "test_loss", "knn_acc", "linear_acc", "train_images_seen"),
}
# The figure without which a run of the task did not finish (it is written at the test's end).
# What train.py adds for every task after the task's keys: the optimizer steps the run took (one ended
# early by early stopping says so; experiment=pretrain_study reports them beside accuracy).
RUN_KEYS = ("steps",)
FINAL_KEY = {"classification": "test_acc", "denoising": "fid", "pretraining": "knn_acc"}
RESULT_KEYS = (*COMMON_KEYS, *TASK_KEYS["classification"])


def task_of(record: dict[str, Any]) -> str:
    """The task of a results record ("classification" when it predates the "task" key)."""
    return str(record.get("task") or "classification")


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this run: CUDA memory allocated on a GPU, the process's peak RSS on the CPU."""
    import torch  # here, so that vitbench-compare starts without importing torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def write_json_atomic(path: Path, record: dict[str, Any]) -> None:
    """Write `record` so that a crash mid-write never leaves a half file where a good one was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
