"""These tests' models are tiny: one thread runs them fastest, and on a busy machine two threads wait
on each other at every small op (measured here at load 10 on 2 cores: 12 ms a MAE step on one
thread, 120-300 ms on two)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
