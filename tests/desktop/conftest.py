"""One Xvfb per desktop test module, and in it one weston (X11 back end) at the module's output scale."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.desktop.desk import Screen
from tests.support.weston import Weston, start_weston
from tests.support.xvfb import XServer, start_xvfb


@dataclass
class Desk:
    xserver: XServer
    weston: Weston
    screen: Screen

    def env(self, backend: str) -> dict[str, str]:
        """A viewer's environment on ``backend``: plain X11 (no WAYLAND_DISPLAY), or weston's Wayland."""
        return self.weston.env() if backend == "wayland" else self.xserver.env()

    def ensure_weston(self) -> None:
        """weston 10 now and then segfaults (a call through a null pointer, in the kernel log), seen after a
        Wayland client of an earlier test went away: a weston that ended is started again, and said, so one
        crash does not fail the tests after it (a crash during a test still fails that test)."""
        if self.weston.proc.poll() is None:
            return
        code = self.weston.proc.returncode
        w = self.weston
        self.weston.stop()   # keeps the crashed weston's log in /tmp (tests/support/weston.py)
        self.weston = start_weston(self.xserver, w.width, w.height, scale=w.scale)
        print(f"weston had ended (status {code}) before this test: started again")

    def output(self, backend: str) -> tuple[int, int]:
        """The screen a full-screen window covers, in device pixels (at (0, 0) of the Xvfb)."""
        if backend == "wayland":
            return self.weston.width, self.weston.height
        return self.xserver.width, self.xserver.height


def make_desk(scale: int):
    xserver = start_xvfb(1920, 1080)
    try:
        weston = start_weston(xserver, 1280, 720, scale=scale)
    except BaseException:
        xserver.stop()
        raise
    desk = Desk(xserver, weston, Screen(xserver.display))
    return desk


def close_desk(desk: Desk) -> None:
    desk.screen.close()
    desk.weston.stop()
    desk.xserver.stop()


@pytest.fixture(autouse=True)
def _weston_alive(request):
    """Before each test of a module with a ``desk``: its weston running (Desk.ensure_weston)."""
    if "desk" in request.fixturenames:
        request.getfixturevalue("desk").ensure_weston()
