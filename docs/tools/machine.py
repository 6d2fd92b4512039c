"""Print the line a results page opens with: the date, the machine and torch (a study's make target
writes it to docs/results/<study>/machine.md beside its comparison)."""

import datetime
import os
import platform

import torch


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(
    f"Measured on {datetime.date.today()}: {os.cpu_count()} cores of {cpu_name()}, {gpu}, torch {torch.__version__}."
)
