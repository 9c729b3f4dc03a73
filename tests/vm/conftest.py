"""kvmfr-vm run as a user runs it (a subprocess), with its runtime folder under the test's own directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def vm_env(tmp_path):
    """Environment for kvmfr-vm: XDG_RUNTIME_DIR in tmp_path (sockets, pid file, state)."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run))
    return env


def kvmfr_vm(env: dict, *args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmfr_client.vm.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def guest_image():
    """The project's tiny test guest (kernel + initramfs, built once, cached under .cache/guest)."""
    from tests.support.guest import build_guest
    return build_guest()


@pytest.fixture(scope="session")
def host_pulse():
    """A private PulseAudio daemon with null sinks (tests/support/pulse.py) for the host side of the audio."""
    from tests.support.pulse import running_pulse
    with running_pulse() as daemon:
        yield daemon
