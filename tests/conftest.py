"""Shared fixtures: compose vitbench's real configs the way `vitbench-train` does."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from clirun import run_in_process
from vitbench.run.config import CONFIG_DIR, register_resolvers

# Tests run on the CPU, never on a GPU that happens to be there.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.pop("WANDB_API_KEY", None)
os.environ["WANDB_SILENT"] = "true"
# One torch thread in this process: the test networks are tiny, and on a 2-core machine that another job
# shares, two OpenMP threads wait on each other (an EfficientViT debug run: 22 s instead of 1 s). The
# in-process runs put back this count after a `threads=` override (clirun.call_main).
torch.set_num_threads(1)


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose `train.yaml` with overrides, outputs under tmp_path, HydraConfig set as in a real run."""
    register_resolvers()

    def _compose(*overrides: str) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path / "run")
        HydraConfig().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]  # a real run's task function does not see it either
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture
def no_debian(tmp_path, monkeypatch):
    """Point the Debian path at an empty folder and clear $VITBENCH_DATA, so only the test's data counts."""
    empty = tmp_path / "debian"
    empty.mkdir()
    monkeypatch.setattr("vitbench.data.sources.fashion_mnist.DEBIAN_FASHION_MNIST", str(empty))
    monkeypatch.delenv("VITBENCH_DATA", raising=False)
    return empty


@pytest.fixture(scope="session")
def finished_vit_run(tmp_path_factory) -> Path:
    """One finished `vitbench-train data=synthetic debug=fast seed=5 threads=1` (the default ViT, its
    checkpoints, pictures and offline W&B run), trained once for the whole session through the real entry
    point, for the tests that only read a finished run (test_train checks its seed). A test that writes
    into a run folder copies it first (shutil.copytree to its tmp_path)."""
    cwd = tmp_path_factory.mktemp("finished_vit")
    code, err = run_in_process(
        "data=synthetic", "debug=fast", "seed=5", "threads=1", f"hydra.run.dir={cwd / 'run'}", cwd=cwd
    )
    assert code == 0, err[-3000:]
    return cwd / "run"
