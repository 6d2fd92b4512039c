"""The run record: results.json, the contract that vitbench-compare reads."""

from __future__ import annotations

import resource
from typing import TYPE_CHECKING, Any

from vitbench import __version__
from vitbench.run.files import write_json_atomic  # noqa: F401  (re-exported: results.json's writer)

if TYPE_CHECKING:
    import torch

# The format of results.json and of the checkpoints (`checkpoint["vitbench"]["format"]`): the vitbench
# version that introduced it. Bump it to the release's version when either changes in a way an older
# reader would misread; a record or checkpoint of another format is refused (`format_problem`).
RECORD_FORMAT = "0.2.0"
# The keys every run writes, whatever its task, in this order; then what its task adds (its
# definition's `Task.metrics`, through the module's `run_record`), then RUN_KEYS.
COMMON_KEYS = (
    "format",
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
# What train.py adds for every task after the task's keys: the optimizer steps the run took (one ended
# early by early stopping says so; experiment=pretrain_study reports them beside accuracy).
RUN_KEYS = ("steps",)


def format_problem(found: Any, what: str) -> str:
    """ "" when `found` (a record's or checkpoint's ``format``, None when it has none) is this
    vitbench's `RECORD_FORMAT`; else one line naming the version that wrote `what` and what to do."""
    if found == RECORD_FORMAT:
        return ""
    # Only vitbench 0.1.0, released before the key existed, wrote none.
    writer = "0.1.0 (it has no format key)" if found is None else str(found)
    return (
        f"{what} was written by vitbench {writer}; this vitbench {__version__} reads format {RECORD_FORMAT} "
        f"only: re-run it with this version, or use vitbench {writer.split(' ')[0]} to read it."
    )


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this run: CUDA memory allocated on a GPU, the process's peak RSS on the CPU."""
    import torch  # here, so that vitbench-compare starts without importing torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
