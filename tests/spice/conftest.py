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


@pytest.fixture(scope="session")
def guest_image():
    """Kernel + initramfs of the test guest (downloaded and built once, cached under .cache/guest)."""
    from tests.support.guest import build_guest
    return build_guest()


def _boot(tmp_path_factory, image, name: str, tablet: bool, devices: tuple[str, ...]):
    from tests.support.vm import start_guest
    vm = start_guest(tmp_path_factory.mktemp(name), image, tablet=tablet, name=name)
    found = {}
    for _ in devices:
        m = vm.serial.wait_for(r"^DEV (\d+) (.*)$", 60)
        if m is None:
            vm.stop()
            pytest.fail(f"the guest did not bring up its input devices {devices} within 60 s:\n{vm.output()}")
        found[m.group(2)] = int(m.group(1))
    missing = [d for d in devices if not any(d in name for name in found)]
    if missing:
        vm.stop()
        pytest.fail(f"guest input devices {missing} missing; found {found}:\n{vm.output()}")
    vm.devices = {d: next(n for name, n in found.items() if d in name) for d in devices}
    return vm


@pytest.fixture(scope="module")
def guest(tmp_path_factory, guest_image):
    """A real Debian kernel with PS/2 keyboard and mouse, printing its input events to the serial line."""
    vm = _boot(tmp_path_factory, guest_image, "guest", False, ("AT Translated Set 2 keyboard", "PS/2"))
    yield vm
    vm.stop()


@pytest.fixture(scope="module")
def guest_tablet(tmp_path_factory, guest_image):
    """The guest with a USB tablet and one display: SPICE offers client (absolute) mouse mode."""
    vm = _boot(tmp_path_factory, guest_image, "guest-tablet", True,
               ("AT Translated Set 2 keyboard", "PS/2", "USB Tablet"))
    yield vm
    vm.stop()
