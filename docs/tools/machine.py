"""Print the line a results page opens with: the date, the machine and torch (a study's make target
writes it to docs/results/<study>/machine.md beside its comparison)."""

import datetime
import os

import torch

from vitbench.run.machine import cpu_name

gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(
    f"Measured on {datetime.date.today()}: {os.cpu_count()} cores of {cpu_name()}, {gpu}, torch {torch.__version__}."
)
