"""The fuzz_runs fixture: every fuzz target, started once for the session (see runs.py). The root
conftest starts them early, while the quiet tests of tests/config and tests/core run, so that their
wall time overlaps instead of adding up; this fixture starts them if nothing did."""

from __future__ import annotations

import pytest

from .runs import POOL


@pytest.fixture(scope="session")
def fuzz_runs():
    """{"native:reader": FuzzRun, ...}: every target whose tools are here. A test whose tools are missing
    fails through runs.require() before it asks."""
    POOL.start()
    return POOL.runs
