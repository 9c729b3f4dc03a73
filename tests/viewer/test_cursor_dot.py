"""spice:showCursorDot / spice:largeCursorDot: outside capture the local pointer is hidden over the window
while it drives the guest's cursor, and shows as a dot (read back from the X server through XFixes) when
the window loses the focus or SPICE input is turned off (ScrollLock+I); with the option off it stays
hidden."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from kvmfr_client.input.grab import DOT_LARGE, DOT_SMALL
from tests.support.xcursor import XPointer
from tests.viewer.agent import wait_for
from tests.viewer.helpers import REPO
from tests.viewer.test_keys import find_window, xdotool

OPAQUE = np.uint32(0xFF000000)


def _shown(xp: XPointer) -> str:
    """'hidden' (nothing opaque), 'dot:N' (an N x N image, opaque white centre with the hot spot on it),
    or 'other:WxH'."""
    pixels, hot = xp.cursor()
    opaque = (pixels & OPAQUE) == OPAQUE
    if not opaque.any():
        return "hidden"
    h, w = pixels.shape
    if h == w and hot == (w // 2, h // 2) and pixels[hot[1], hot[0]] == 0xFFFFFFFF:
        return f"dot:{w}"
    return f"other:{w}x{h}"


@pytest.mark.parametrize("options, dot", [((), f"dot:{DOT_SMALL}"),
                                          (("spice:largeCursorDot=yes",), f"dot:{DOT_LARGE}"),
                                          (("spice:showCursorDot=no",), "hidden")],
                         ids=["default", "large", "off"])
def test_pointer_is_a_dot_only_while_it_does_not_drive_the_guest(xserver, tmp_path, shm_path, options, dot):
    proc = subprocess.Popen([sys.executable, "-m", "tests.viewer.hook_child", str(tmp_path / "sent.json"),
                             "--controller", "--shm", str(shm_path), "--exit-after", "60",
                             "win:size=320x200", "win:position=0,0", "win:borderless=yes", "win:title=dottest",
                             *options],
                            cwd=REPO, env=xserver.env(XDG_CONFIG_HOME=str(tmp_path)))
    xp = XPointer(xserver.display)
    seen: list[str] = []

    def shows(want: str):
        def check() -> bool:
            seen.append(_shown(xp))
            return seen[-1] == want
        return check

    def becomes(want: str, what: str) -> None:
        """The pointer turns ``want``; "hidden" (what it already was) must instead hold for a whole second,
        time enough for the viewer to have turned it into a dot (it does so within a few frames)."""
        if want != "hidden":
            wait_for(shows(want), 10, f"the pointer {want} {what} (saw {seen[-1:]})")
            return
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert shows(want)(), f"the pointer {seen[-1]} {what}, expected it to stay hidden"
            time.sleep(0.05)
    try:
        wid = find_window(xserver, "^dottest")
        # --sync waits for the pointer to move: an earlier test may have left it at 100,100 already.
        xdotool(xserver, "mousemove", "1", "1")
        xdotool(xserver, "mousemove", "--sync", "100", "100")
        xdotool(xserver, "windowfocus", "--sync", wid)
        wait_for(shows("hidden"), 10, f"the pointer hidden over the focused window (saw {seen[-1:]})")
        xp.focus_root()
        becomes(dot, "once the window lost the focus")
        xdotool(xserver, "windowfocus", "--sync", wid)
        wait_for(shows("hidden"), 10, f"the pointer hidden again with the focus back (saw {seen[-1:]})")
        time.sleep(0.3)
        xdotool(xserver, "keydown", "Scroll_Lock", "key", "i", "keyup", "Scroll_Lock")
        becomes(dot, "with SPICE input off")
        xdotool(xserver, "keydown", "Scroll_Lock", "key", "q", "keyup", "Scroll_Lock")
        assert proc.wait(20) == 0
    finally:
        xp.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
