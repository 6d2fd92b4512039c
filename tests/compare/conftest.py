"""Fixtures for the vitbench.compare tests: fake sweeps written into tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_runs import write_denoising_runs, write_sweep


@pytest.fixture
def sweep(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A multirun folder (8 finished jobs, one crashed, one corrupt) and the finished jobs' records."""
    root = tmp_path / "multirun" / "2024-05-01" / "12-00-00"
    return root, write_sweep(root)


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    """A multirun folder holding the classification sweep of `sweep` and denoising jobs (3 groups x
    2 seeds, one unfinished), and the finished records of each task."""
    root = tmp_path / "multirun" / "2024-05-02" / "12-00-00"
    classification = write_sweep(root)
    return root, classification, write_denoising_runs(root, first_job=len(classification) + 2)
