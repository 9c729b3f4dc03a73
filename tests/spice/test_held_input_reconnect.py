"""Keys and buttons held in capture mode when the SPICE server goes away: after the reconnect the guest
has nothing stuck down. Checked in QEMU's input trace (every key and button event its input layer got).

Two ways the server goes: the connection is lost while QEMU runs on (a relay cut and restored: the guest
keeps its input state, spice-server releases only Shift/Ctrl/Alt), and QEMU killed and started again."""

from __future__ import annotations

import signal
import threading

from kvmfr_client.spice import Address, SpiceClient, SpiceThread, keymap
from kvmfr_client.spice.protocol import Button
from tests.spice.cut import CuttableRelay
from tests.support.process import wait_for
from tests.support.vm import start_qemu, take_until

ROUNDS = 3


def held_down(events: list[tuple]) -> set[tuple[str, str]]:
    """What the guest's input layer holds down after ``events`` (keys and buttons)."""
    down: set[tuple[str, str]] = set()
    for kind, name, value in events:
        if kind in ("key", "btn"):
            (down.add if value else down.discard)((kind, name))
    return down


class States:
    def __init__(self):
        self._lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []

    def __call__(self, state: str, detail: str) -> None:
        with self._lock:
            self.seen.append((state, detail))

    def count(self, state: str) -> int:
        with self._lock:
            return sum(1 for s, _ in self.seen if s == state)


def _key(name: str) -> int:
    return keymap.scancode(keymap.key_from_name(name))


def test_keys_and_buttons_held_across_lost_connections_are_released(tmp_path):
    vm = start_qemu(tmp_path, name="held")
    relay = CuttableRelay(vm.port)
    states = States()
    spice = SpiceThread(SpiceClient(Address("127.0.0.1", relay.port), on_state=states, backoff=(0.1, 0.4))).start()
    try:
        wait_for(lambda: states.count("connected") == 1 and spice.connected, 10, "the first connection", interval=0.02)
        held = [("a", "a"), ("shift", "shift"), ("ctrl", "ctrl")]
        for n in range(ROUNDS):
            vm.trace.mark()
            for name, _ in held:
                spice.key_down(_key(name))
            spice.button_press(Button.LEFT)
            pressed = vm.trace.take(len(held) + 1)
            assert held_down(pressed) == {("key", q) for _, q in held} | {("btn", "left")}, pressed

            relay.cut()  # the server goes away with the keys and the button down
            wait_for(lambda: states.count("lost") == n + 1, 5, "the client to notice the lost server", interval=0.02)
            spice.key_up(_key("ctrl"))  # released during the outage: that release never reached the guest
            relay.resume()
            wait_for(lambda: states.count("connected") == n + 2 and spice.connected, 10, "the reconnection",
                     interval=0.02)
            after = take_until(vm.trace, lambda ev: not held_down(pressed + ev), timeout=5)
            assert held_down(pressed + after) == set(), (
                f"round {n + 1}: still down in the guest after the reconnect: {held_down(pressed + after)}; "
                f"events {after}")
            # ... and input works as before.
            spice.key_down(_key("b"))
            spice.key_up(_key("b"))
            assert vm.trace.take(2) == [("key", "b", True), ("key", "b", False)]
    finally:
        spice.stop()
        relay.close()
        vm.stop()


def test_keys_and_buttons_held_when_qemu_is_killed_are_not_down_in_the_new_one(tmp_path):
    first = start_qemu(tmp_path / "first", name="first")
    states = States()
    spice = SpiceThread(SpiceClient(Address("127.0.0.1", first.port), on_state=states, backoff=(0.1, 0.4))).start()
    second = None
    try:
        wait_for(lambda: states.count("connected") == 1 and spice.connected, 10, "the first connection", interval=0.02)
        spice.key_down(_key("a"))
        spice.key_down(_key("shift"))
        spice.button_press(Button.RIGHT)
        assert len(first.trace.take(3, kinds=("key", "btn"))) == 3
        first.stop(signal.SIGKILL)
        wait_for(lambda: states.count("lost") == 1, 5, "the client to notice QEMU is gone", interval=0.02)
        second = start_qemu(tmp_path / "second", port=first.port, name="second")
        wait_for(lambda: states.count("connected") == 2 and spice.connected, 10, "the reconnection", interval=0.02)
        events = second.trace.take(timeout=1.0, settle=0.3)
        assert held_down(events) == set(), events
        assert not any(value for kind, _, value in events if kind in ("key", "btn")), f"nothing pressed: {events}"
        spice.key_down(_key("b"))
        spice.key_up(_key("b"))
        tail = take_until(second.trace, lambda ev: ("key", "b", False) in ev, timeout=5)
        assert ("key", "b", True) in tail and held_down(events + tail) == set(), tail
    finally:
        spice.stop()
        first.stop()
        if second is not None:
            second.stop()
