"""Registers the ``slow`` marker until pyproject.toml does (branch layout adds it there)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: drives subprocesses or faults; `pytest -m 'not slow'` is the fast loop"
    )
