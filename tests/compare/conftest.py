"""Fixtures for the vitbench.compare tests: a fake sweep written into tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_runs import write_sweep


@pytest.fixture
def sweep(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A multirun folder (8 finished jobs, one crashed, one corrupt) and the finished jobs' records."""
    root = tmp_path / "multirun" / "2024-05-01" / "12-00-00"
    return root, write_sweep(root)
