"""Runs inside the demo guest (``python -m kvmfr_client.vm.guest_keys``, as root, chrooted in the host's tree):
prints each key the guest's input devices report on its console, ``GUEST key 30 down`` (Linux key codes:
30 is A), so ``kvmfr-vm demo`` shows that keys typed in the window reached the guest; and powers the guest
off when its ACPI power button is pressed (``kvmfr-vm stop``'s power-down), as the tiny guest has no acpid.

Reads ``struct input_event`` (64-bit: two longs of time, type, code, value) from every /dev/input/event*.
"""

from __future__ import annotations

import glob
import os
import select
import struct
import sys
import time

EVENT = struct.Struct("llHHi")
EV_KEY = 1
KEY_POWER = 116


def _open_all(fds: dict[int, str]) -> None:
    for path in glob.glob("/dev/input/event*"):
        if path not in fds.values():
            try:
                fds[os.open(path, os.O_RDONLY | os.O_NONBLOCK)] = path
            except OSError:
                pass


def _read(fd: int, fds: dict[int, str]) -> bytes:
    """What the device has ready; b"" when nothing is. A device that went away (unplugged: ENODEV) is closed
    and dropped, and the others go on being read (the power button among them)."""
    try:
        return os.read(fd, EVENT.size * 64)
    except BlockingIOError:
        return b""
    except OSError as exc:
        path = fds.pop(fd, "?")
        print(f"GUEST {path} went away ({exc.strerror}): no longer read", flush=True)
        try:
            os.close(fd)
        except OSError:
            pass
        return b""


def main() -> int:
    fds: dict[int, str] = {}
    deadline = time.monotonic() + 30
    while not fds and time.monotonic() < deadline:
        _open_all(fds)
        time.sleep(0.2)
    if not fds:
        print("GUEST no input devices: keys cannot be shown", flush=True)
        return 1
    print("GUEST keys: reading the guest's keyboard", flush=True)
    while True:
        ready, _, _ = select.select(list(fds), [], [], 2.0)
        _open_all(fds)   # devices whose drivers bound later
        for fd in ready:
            data = _read(fd, fds)
            for off in range(0, len(data) - EVENT.size + 1, EVENT.size):
                _, _, etype, code, value = EVENT.unpack_from(data, off)
                if etype != EV_KEY or value not in (0, 1):
                    continue
                if code == KEY_POWER and value == 1:
                    print("GUEST power button: powering off", flush=True)
                    with open("/proc/sysrq-trigger", "w") as trigger:
                        trigger.write("o")
                print(f"GUEST key {code} {'down' if value else 'up'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
