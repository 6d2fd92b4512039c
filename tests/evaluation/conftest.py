"""The finished run these tests profile: a copy of the session's `finished_vit_run` (tests/conftest.py),
which stays as training left it."""

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def run_with_wandb(finished_vit_run, tmp_path) -> Path:
    """A copy of the finished run, its offline W&B run included, free to write into."""
    return Path(shutil.copytree(finished_vit_run, tmp_path / "run"))


@pytest.fixture
def run(run_with_wandb) -> Path:
    """A copy of the finished run without its W&B run: profiling it writes results.json and pictures only
    (resuming a W&B run costs seconds; one test does it)."""
    shutil.rmtree(run_with_wandb / "wandb")
    return run_with_wandb
