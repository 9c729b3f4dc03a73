"""Escape-key bindings typed into the real window with xdotool (XTEST): ScrollLock + D, F, Q."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.viewer.agent import ViewerRun, wait_for


def xdotool(xserver, *args: str) -> str:
    exe = shutil.which("xdotool")
    if exe is None:
        pytest.fail("xdotool is not installed: run `scripts/setup.sh test` (apt-get install xdotool)")
    proc = subprocess.run([exe, *args], env=xserver.env(), capture_output=True, text=True, timeout=10)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def test_scroll_lock_combos_toggle_stats_fullscreen_and_quit(xserver, tmp_path, shm_path):
    viewer = ViewerRun(xserver, tmp_path, shm_path, 20.0, "win:size=640x360")
    wid = ""

    def find():
        nonlocal wid
        wid = xdotool(xserver, "search", "--name", "^kvmfr-view").split("\n")[0]
        return bool(wid)
    wait_for(find, 15, "the viewer window to appear")
    time.sleep(0.5)
    xdotool(xserver, "windowfocus", "--sync", wid)
    t0 = time.monotonic()
    for key in ("d", "f", "q"):
        xdotool(xserver, "keydown", "Scroll_Lock", "key", key, "keyup", "Scroll_Lock")
        time.sleep(0.4)
    stats, snap = viewer.wait()
    assert stats["quit_by_key"], "ScrollLock+Q must close the window"
    assert time.monotonic() - t0 < 10
    assert stats["show_stats"], "ScrollLock+D must show the stats overlay"
    assert stats["fullscreen"] and stats["window"] == [xserver.width, xserver.height], stats["window"]
    # the stats box is drawn at the top-left (white text on a dark box)
    assert (snap[8:60, 8:200, 0] == 255).any()
