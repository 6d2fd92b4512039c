"""What bench.json holds: the machine, per-variant figures, the printed table, the sweep summary."""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path
from typing import Any

import torch

from vitbench.run.files import write_json_atomic
from vitbench.run.machine import cpu_name
from vitbench.run.results import peak_memory_mb as cuda_or_process_peak_mb

# Every variant's entry in bench.json holds these keys (tests/test_bench.py checks them).
FIGURE_KEYS = (
    "params",
    "gflops",
    "train_images_per_s",
    "bare_train_images_per_s",
    "framework_ratio",
    "inference_images_per_s",
    "data_images_per_s",
    "data_margin",
    "peak_memory_mb",
    "train_gflop_per_s",
    "matmul_gflop_per_s",
    "matmul_fraction",
)

# (heading, key, format) of the printed table.
COLUMNS = (
    ("model", "model", "{}"),
    ("params M", "params", "{:.2f}"),
    ("GFLOPs", "gflops", "{:.4f}"),
    ("vitbench img/s", "train_images_per_s", "{:.0f}"),
    ("bare img/s", "bare_train_images_per_s", "{:.0f}"),
    ("ratio", "framework_ratio", "{:.3f}"),
    ("infer img/s", "inference_images_per_s", "{:.0f}"),
    ("data x", "data_margin", "{:.0f}"),
    ("train GFLOP/s", "train_gflop_per_s", "{:.1f}"),
    ("matmul GFLOP/s", "matmul_gflop_per_s", "{:.1f}"),
    ("% of matmul", "matmul_fraction", "{:.1%}"),
    ("peak MB", "peak_memory_mb", "{:.0f}"),
)


def machine(device: torch.device) -> dict[str, Any]:
    """Where the figures were taken: CPU, cores, torch and its threads, the device."""
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's allocator statistics, or the process's RSS high-water mark.

    getrusage's peak covers the whole process, so in a `-m` sweep (every job in one process)
    each variant would inherit the peak of the one before; Linux resets VmHWM on request.
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux (or not allowed): the process-wide peak is what is left


def peak_memory_mb(device: torch.device) -> float:
    """Peak since :func:`reset_peak_memory`: CUDA memory allocated, or the process's resident set."""
    if device.type == "cuda":
        return cuda_or_process_peak_mb(device)
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def format_table(variants: list[dict[str, Any]]) -> str:
    """A plain-text table, one row per variant."""
    rows = [[h for h, _, _ in COLUMNS]]
    for v in variants:
        values = {**v, "params": v["params"] / 1e6}
        rows.append(
            [fmt.format(values[key]) if values.get(key) is not None else "-" for _, key, fmt in COLUMNS]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def merge_into_sweep(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Add this job's variants to the sweep's bench.json (a job run again replaces its entry).

    Jobs of the basic launcher run one after another; parallel launchers would race here, and
    would distort every timing anyway.
    """
    summary = json.loads(path.read_text()) if path.is_file() else {"variants": []}
    jobs = {v["job"] for v in record["variants"]}
    summary["variants"] = [v for v in summary["variants"] if v.get("job") not in jobs] + record["variants"]
    summary["machine"], summary["settings"] = record["machine"], record["settings"]
    write_json_atomic(path, summary)
    return summary
