"""QEMU fixtures for the SPICE tests. Every QEMU listens on 127.0.0.1 (random port) or a UNIX socket
under the test's temporary directory, and is killed by the fixture's finalizer."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from kvmfr_client.spice.client import SpiceClient
from kvmfr_client.spice.link import Address
from tests.support.vm import start_qemu

PASSWORD = "s3cret-pässword"


@pytest.fixture(scope="session")
def qemu(tmp_path_factory):
    """A running bare machine with SPICE (no password) and its input layer traced."""
    vm = start_qemu(tmp_path_factory.mktemp("qemu"), name="plain")
    yield vm
    vm.stop()


@pytest.fixture(scope="session")
def qemu_password(tmp_path_factory):
    vm = start_qemu(tmp_path_factory.mktemp("qemu-pw"), password=PASSWORD, name="password")
    yield vm
    vm.stop()


@pytest.fixture
def trace(qemu):
    """The plain QEMU's trace, with everything before this test skipped."""
    qemu.trace.mark()
    return qemu.trace


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """Run kvmfr-input as a user would (the module is the console script's entry point)."""
    return subprocess.run([sys.executable, "-m", "kvmfr_client.spice.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def send(spice: str, play, password: str | None = None, **kw) -> None:
    """Connect a SpiceClient, call ``play(client)`` on the loop, and close after the server handled it."""

    async def go():
        client = SpiceClient(Address.parse(spice), password, **kw)
        await client.connect()
        try:
            result = play(client)
            if asyncio.iscoroutine(result):
                await result
        finally:
            await client.close(flush=True)

    asyncio.run(go())
