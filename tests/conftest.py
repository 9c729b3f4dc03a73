"""Shared fixtures. Each part's own fixtures (PulseAudio, QEMU, ...) live in its tests/<part>/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.xvfb import start_xvfb

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


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
