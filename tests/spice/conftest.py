"""QEMU fixtures for the SPICE tests. Every QEMU listens on 127.0.0.1 (random port) or a UNIX socket
under the test's temporary directory, and is killed by the fixture's finalizer."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time

import pytest

from kvmfr_client.spice.client import SpiceClient
from kvmfr_client.spice.link import Address
from tests.support.process import stop_process
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


GUEST_CLIPBOARD = "grüße-from-the-guest"


@pytest.fixture(scope="session")
def guest_agent(tmp_path_factory):
    """The guest with a SPICE agent port and a stand-in agent whose clipboard holds GUEST_CLIPBOARD, and an
    AC'97 card on QEMU's SPICE audio whose capture device it records (MIC lines, tests/spice/mic_guest.py):
    one boot for the clipboard and the microphone checks."""
    from tests.spice.mic_guest import QEMU_SOUND, build_mic_guest
    from tests.support.vm import start_guest
    vm = start_guest(tmp_path_factory.mktemp("guest-agent"), build_mic_guest(), agent_text=GUEST_CLIPBOARD,
                     name="guest-agent", extra=QEMU_SOUND)
    if vm.serial.wait_for(r"^AGENT started", 60) is None:
        vm.stop()
        pytest.fail(f"the guest's stand-in SPICE agent did not start:\n{vm.output()}")
    yield vm
    vm.stop()


# -- the window harness (a GLFW window with InputController, standing in for the viewer) ----------

class Harness:
    def __init__(self, proc: subprocess.Popen, env: dict):
        self.proc = proc
        self.env = env
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, name="harness-out", daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_line(self, prefix: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, line in enumerate(self.lines):
                    if line.startswith(prefix):
                        del self.lines[:i + 1]
                        return line
                    if line.startswith("FAILED"):
                        pytest.fail(f"window harness: {line}")
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    pytest.fail(f"window harness never printed {prefix!r}; output: {self.lines}")
                self._cond.wait(left)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        self.proc.stdin.close()    # the harness's "quit"; its output is read by a thread
        stop_process(self.proc, timeout=10, sig=None, read_output=False)

    def xdotool(self, *args: str) -> None:
        result = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, f"xdotool {args}: {result.stderr}"


def start_harness(spice: str, xserver, *args: str) -> Harness:
    """Start tests/spice/glfw_harness.py on the private Xvfb, connected to ``spice``."""
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed: run `scripts/setup.sh test`")
    env = xserver.env()
    proc = subprocess.Popen([sys.executable, "-m", "tests.spice.glfw_harness", "--spice", spice, *args],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return Harness(proc, env)
