"""Fixtures of the model tests."""

from __future__ import annotations

import functools

import pytest
import torch


@pytest.fixture
def adamw():
    """What Hydra builds from ``_partial_: true`` for torch.optim.AdamW."""
    return functools.partial(torch.optim.AdamW, lr=3e-3, weight_decay=0.05, betas=(0.9, 0.999))
