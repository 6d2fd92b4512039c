"""Launch mechanics: Lightning's DDP launcher inside a Hydra multirun job."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict, read_write


@contextmanager
def ddp_children_run_this_job():
    """Let Lightning's DDP launcher start ranks 1.. on this job of a multirun, not on the sweep.

    Lightning starts the other ranks by re-running `sys.argv` plus `hydra.run.dir=<HydraConfig
    run.dir>`. In a multirun job `sys.argv` holds the sweep (`-m model=vit,swin`) and run.dir is
    not the job's folder, so every rank would run the whole sweep again (Lightning #11300). For
    the job's duration both describe the job alone: its overrides, without -m, and its folder.
    Afterwards the launcher's environment (LOCAL_RANK, MASTER_PORT, ...) and process group go,
    or the next job would take itself for a rank started by torchrun and wait for its peers.
    """
    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra_cfg is None or hydra_cfg.mode != RunMode.MULTIRUN:
        yield
        return
    argv, run_dir, environ = sys.argv, hydra_cfg.run.dir, dict(os.environ)
    sys.argv = [argv[0], *hydra_cfg.overrides.task]
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        sys.argv = argv
        with read_write(hydra_cfg), open_dict(hydra_cfg):
            hydra_cfg.run.dir = run_dir
        os.environ.clear()
        os.environ.update(environ)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
