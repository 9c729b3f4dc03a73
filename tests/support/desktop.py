"""Parts of a desktop for the window-identity tests: a window manager (openbox: small, EWMH-complete) on a
test Xvfb, a private D-Bus session bus, and a stand-in org.freedesktop.ScreenSaver service on it that
prints each Inhibit / UnInhibit it is asked for.

    python -m tests.support.desktop screensaver     (the service; DBUS_SESSION_BUS_ADDRESS names the bus)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.support.process import stop_process, wait_for


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run `scripts/setup.sh test` (apt-get install {package})")
    return path


def xprop(display: str, *args: str) -> str:
    proc = subprocess.run([need("xprop", "x11-utils"), *args], env={**os.environ, "DISPLAY": display},
                          capture_output=True, text=True, timeout=10)
    return proc.stdout + proc.stderr


def start_openbox(display: str) -> subprocess.Popen:
    """openbox on ``display``, returned once it manages the screen (_NET_SUPPORTING_WM_CHECK is set)."""
    exe = need("openbox", "openbox")
    proc = subprocess.Popen([exe, "--sm-disable"], env={**os.environ, "DISPLAY": display},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: proc.poll() is not None or "window id" in xprop(display, "-root", "_NET_SUPPORTING_WM_CHECK"),
                 20, "openbox to manage the test X screen")
    except BaseException:
        stop_process(proc, read_output=False)
        raise
    assert proc.poll() is None, f"openbox ended at start (exit {proc.returncode})"
    return proc


@dataclass
class SessionBus:
    address: str
    proc: subprocess.Popen

    def stop(self) -> None:
        stop_process(self.proc, read_output=False)


def start_session_bus() -> SessionBus:
    """A private dbus-daemon (session configuration); its address is in ``.address``."""
    exe = need("dbus-daemon", "dbus")
    proc = subprocess.Popen([exe, "--session", "--nofork", "--nopidfile", "--print-address=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = proc.stdout.readline().strip()
    if not address:
        stop_process(proc, read_output=False)
        pytest.fail(f"dbus-daemon printed no address (exit {proc.poll()})")
    return SessionBus(address, proc)


def screensaver_service() -> None:
    """Own org.freedesktop.ScreenSaver and answer Inhibit (a new cookie) and UnInhibit, printing each call."""
    from jeepney import HeaderFields, MessageType, new_error, new_method_return
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection
    conn = open_dbus_connection(bus="SESSION")
    conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.ScreenSaver"))
    print("ready", flush=True)
    cookie = 0
    while True:
        msg = conn.receive()
        if msg.header.message_type != MessageType.method_call:
            continue
        member = msg.header.fields.get(HeaderFields.member)
        if member == "Inhibit":
            cookie += 1
            conn.send(new_method_return(msg, "u", (cookie,)))
            print("Inhibit", cookie, *msg.body, flush=True)
        elif member == "UnInhibit":
            conn.send(new_method_return(msg))
            print("UnInhibit", *msg.body, flush=True)
        else:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod"))


if __name__ == "__main__":
    if sys.argv[1:] == ["screensaver"]:
        screensaver_service()
