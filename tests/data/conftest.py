"""Fixtures shared by the data tests."""

import pytest


@pytest.fixture
def no_debian(tmp_path, monkeypatch):
    """Point the Debian path at an empty folder and clear $VITBENCH_DATA, so only the test's data counts."""
    empty = tmp_path / "debian"
    empty.mkdir()
    monkeypatch.setattr("vitbench.data.readers.DEBIAN_FASHION_MNIST", str(empty))
    monkeypatch.delenv("VITBENCH_DATA", raising=False)
    return empty
