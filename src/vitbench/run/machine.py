"""Where a figure was measured, in words: the CPU's model name and core count (torch-free, so
vitbench-compare and the study pages can say it without loading torch)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_line() -> str:
    """``AMD EPYC, 2 cores, Linux 6.1.0``: the CPU, its cores and the system."""
    return f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"
