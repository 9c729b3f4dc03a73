"""QEMU killed and started again: the client reports the loss and reconnects by itself."""

from __future__ import annotations

import signal
import threading
import time

from kvmfr_client.spice import Address, SpiceClient, SpiceThread, keymap
from tests.support.process import wait_for
from tests.support.vm import free_port, start_qemu


def test_client_reports_a_killed_qemu_and_reconnects_to_the_new_one(tmp_path):
    port = free_port()
    states: list[tuple[str, str]] = []
    lock = threading.Lock()

    def on_state(state: str, detail: str) -> None:
        with lock:
            states.append((state, detail))

    def count(state: str) -> int:
        with lock:
            return sum(1 for s, _ in states if s == state)

    first = start_qemu(tmp_path / "first", port=port, name="first")
    spice = SpiceThread(SpiceClient(Address("127.0.0.1", port), on_state=on_state, backoff=(0.1, 0.4))).start()
    second = None
    try:
        wait_for(lambda: count("connected") == 1 and spice.connected, 10, "the first connection", interval=0.02)
        a = keymap.scancode(keymap.key_from_name("a"))
        spice.key_down(a)
        spice.key_up(a)
        assert first.trace.take(2) == [("key", "a", True), ("key", "a", False)]

        first.stop(signal.SIGKILL)
        wait_for(lambda: count("lost") == 1, 5, "the client to notice QEMU is gone", interval=0.02)
        time.sleep(0.5)  # a few failed attempts while no server listens
        assert count("retrying") >= 1, states
        assert f"nothing is listening on 127.0.0.1:{port} (connection refused)" in [d for s, d in states if s == "retrying"][0]

        second = start_qemu(tmp_path / "second", port=port, name="second")
        wait_for(lambda: count("connected") == 2 and spice.connected, 10, "the reconnection", interval=0.02)
        b = keymap.scancode(keymap.key_from_name("b"))
        spice.key_down(b)
        spice.key_up(b)
        assert second.trace.take(2) == [("key", "b", True), ("key", "b", False)]
        assert spice.error is None
    finally:
        spice.stop()
        first.stop()
        if second is not None:
            second.stop()
    lost = [d for s, d in states if s == "lost"][0]
    assert "closed" in lost and "reconnecting" in lost, lost


def test_cli_reports_a_server_that_went_away_mid_script(tmp_path):
    import subprocess
    import sys

    vm = start_qemu(tmp_path, name="gone")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "kvmfr_client.spice.cli", "--spice", vm.spice,
                                 "key", "a", "sleep", "3", "key", "b"], stderr=subprocess.PIPE, text=True)
        assert vm.trace.take(2) == [("key", "a", True), ("key", "a", False)]
        vm.stop(signal.SIGKILL)
        _, err = proc.communicate(timeout=20)
    finally:
        vm.stop()
    assert proc.returncode == 1, err
    assert "closed the" in err and vm.spice in err, err
