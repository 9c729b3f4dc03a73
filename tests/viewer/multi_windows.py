"""The real windows of a viewer on a private Xvfb, found and handled as a user would (xdotool, and the
close button's WM_DELETE_WINDOW, which Xvfb without a window manager cannot send by itself)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.process import wait_for


def xdotool(xserver, *args: str) -> str:
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed: run `scripts/setup.sh test`")
    return subprocess.run(["xdotool", *args], env=xserver.env(), capture_output=True, text=True,
                          timeout=20).stdout.strip()


def find_window(xserver, title: str, timeout: float = 30) -> str:
    found: list[str] = []
    wait_for(lambda: found.append(xdotool(xserver, "search", "--name", title)) or found[-1], timeout,
             f"a window named {title!r}")
    return found[-1].split("\n")[0]


def close_like_its_button(xserver, wid: str) -> None:
    """What a window manager sends when the user clicks the close button: WM_DELETE_WINDOW."""
    from Xlib import X, display, protocol
    d = display.Display(xserver.env()["DISPLAY"])
    try:
        win = d.create_resource_object("window", int(wid))
        protocols, delete = d.intern_atom("WM_PROTOCOLS"), d.intern_atom("WM_DELETE_WINDOW")
        event = protocol.event.ClientMessage(window=win, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
        win.send_event(event, event_mask=X.NoEventMask)
        d.sync()   # a round trip: the server has taken the event before the connection closes
    finally:
        d.close()
