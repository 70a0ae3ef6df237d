"""Fixtures for tests/binder."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _linux_only() -> None:
    """These tests read /proc to find stray processes."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("these tests read /proc to find stray processes (Linux only)")
