"""Shared fixtures. Each part's own fixtures (PulseAudio, QEMU, ...) live in its tests/<part>/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.runs import POOL as FUZZ_POOL
from tests.support.xvfb import start_xvfb

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# The fuzz targets start (niced, in the background) when the suite reaches the first of these folders,
# whose tests mostly wait on child processes: see tests/fuzz/runs.py.
FUZZ_EARLY_AT = ("tests/config/", "tests/core/")
_FUZZ_WANTED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(session, config, items):
    config.stash[_FUZZ_WANTED] = any(item.nodeid.startswith("tests/fuzz/") for item in items)


def pytest_runtest_setup(item):
    if item.config.stash.get(_FUZZ_WANTED, False) and item.nodeid.startswith(FUZZ_EARLY_AT):
        FUZZ_POOL.start()


def pytest_sessionfinish(session, exitstatus):
    FUZZ_POOL.close()


@pytest.fixture(scope="session")
def xserver():
    """A private Xvfb (1920x1080x24) for the whole session; DISPLAY is in xserver.env()."""
    server = start_xvfb()
    yield server
    server.stop()


@pytest.fixture
def shm_path(tmp_path_factory, request):
    """A fresh path under /dev/shm for one test's shared-memory file, removed afterwards."""
    name = f"kvmfr-test-{request.node.name[:40]}-{id(request)}".replace("/", "_").replace("[", "_").replace("]", "_")
    path = Path("/dev/shm") / name
    yield path
    path.unlink(missing_ok=True)
