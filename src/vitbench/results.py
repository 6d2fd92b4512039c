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

RESULT_KEYS = (
    "model",
    "dataset",
    "seed",
    "overrides",
    "params",
    "gflops",
    "train_images_per_s",
    "peak_memory_mb",
    "wall_time_s",
    "val_acc_best",
    "test_acc",
)


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
