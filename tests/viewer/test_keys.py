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


def find_window(xserver, title_regex: str, timeout: float = 40) -> str:
    """The X window id of the first window whose title matches, once it appears."""
    found = []

    def look() -> bool:
        wid = xdotool(xserver, "search", "--name", title_regex).split("\n")[0]
        if wid:
            found.append(wid)
        return bool(wid)
    wait_for(look, timeout, "the viewer window to appear")
    return found[0]


def test_scroll_lock_combos_toggle_stats_fullscreen_and_quit(xserver, tmp_path, shm_path):
    viewer = ViewerRun(xserver, tmp_path, shm_path, 20.0, "win:size=640x360")
    wid = find_window(xserver, "^kvmfr-view")
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


def test_window_events_reach_the_controller_but_viewer_combos_not_the_guest(xserver, tmp_path, shm_path):
    import json
    import sys

    from tests.viewer.agent import start_agent, stop, wait_viewer_watching
    from tests.viewer.helpers import REPO
    agent = start_agent(shm_path, (320, 240), fps=30, cursor=False)
    out = tmp_path / "events.json"
    proc = subprocess.Popen([sys.executable, "-m", "tests.viewer.hook_child", str(out), "--shm", str(shm_path),
                             "--exit-after", "60", "win:size=640x480", "win:position=0,0", "win:borderless=yes"],
                            cwd=REPO, env=xserver.env(XDG_CONFIG_HOME=str(tmp_path)))
    try:
        wait_viewer_watching(shm_path)
        wid = xdotool(xserver, "search", "--name", "^kvmfr-view").split("\n")[0]
        xdotool(xserver, "windowfocus", "--sync", wid)
        # --sync waits for the pointer to move: an earlier test may have left it at 320,240 already.
        xdotool(xserver, "mousemove", "1", "1")
        xdotool(xserver, "mousemove", "--sync", "320", "240")
        xdotool(xserver, "click", "1")
        xdotool(xserver, "key", "a")
        time.sleep(0.3)
        xdotool(xserver, "keydown", "Scroll_Lock", "key", "d", "keyup", "Scroll_Lock")
        time.sleep(0.3)
        xdotool(xserver, "keydown", "Scroll_Lock", "key", "q", "keyup", "Scroll_Lock")
        assert proc.wait(20) == 0
    finally:
        stop(agent)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result = json.loads(out.read_text())
    events, sent = result["events"], result["sent"]
    # the window's events carry evdev codes; what reaches SPICE is set-1 scancodes
    from kvmfr_client.input.events import BTN_LEFT
    from kvmfr_client.spice import keymap
    KEY_A, KEY_D, KEY_Q, KEY_SCROLLLOCK = (keymap.key_from_name(k) for k in ("a", "d", "q", "scrolllock"))
    keys = [(e[1], e[2]) for e in events if e[0] == "key"]
    assert (KEY_A, True) in keys and (KEY_A, False) in keys
    assert ["key_down", keymap.scancode(KEY_A)] in sent and ["key_up", keymap.scancode(KEY_A)] in sent, sent
    assert (KEY_SCROLLLOCK, True) in keys, "the escape key itself goes to the controller (capture toggle)"
    assert all(s[1] not in (keymap.scancode(KEY_D), keymap.scancode(KEY_Q)) for s in sent
               if s[0] in ("key_down", "key_up")), "viewer combos must not reach the guest"
    assert all(s[1] != keymap.scancode(KEY_SCROLLLOCK) for s in sent if s[0] in ("key_down", "key_up"))
    assert ["button", BTN_LEFT, True] in events
    assert ["button_press", 1] in sent, "the click reached SPICE as the left button"
    pos = [e for e in events if e[0] == "pos" and e[1] == 320 and e[2] == 240]
    # 320x240 frame shown 2x in the 640x480 window: window (320, 240) is guest (160, 120)
    assert pos and pos[-1][3] == [160.0, 120.0], pos


def test_window_position_size_and_borderless(xserver, tmp_path, shm_path):
    viewer = ViewerRun(xserver, tmp_path, shm_path, 30.0, "win:size=400x300", "win:position=100,50",
                       "win:borderless=yes", "win:title=geomtest")
    try:
        wid = find_window(xserver, "^geomtest")
        time.sleep(0.3)
        geometry = xdotool(xserver, "getwindowgeometry", wid)
        stats, _ = viewer.finish()
    finally:
        if viewer.proc.poll() is None:
            viewer.proc.kill()
            viewer.proc.wait()
    assert "Position: 100,50" in geometry and "Geometry: 400x300" in geometry, geometry
    assert stats["window"] == [400, 300] and stats["title"].startswith("geomtest - ")


def test_fullscreen_flag_fills_the_screen(xserver, tmp_path, shm_path):
    stats, snap = ViewerRun(xserver, tmp_path, shm_path, 1.5, "win:size=640x360", flags=("-F",)).wait()
    assert stats["fullscreen"] and stats["window"] == [xserver.width, xserver.height], stats["window"]
    assert snap.shape[:2] == (xserver.height, xserver.width)


def test_real_input_controller_runs_viewer_combos_and_gets_keys(xserver, tmp_path, shm_path):
    import json
    import sys

    from tests.viewer.helpers import REPO
    out = tmp_path / "sent.json"
    proc = subprocess.Popen([sys.executable, "-m", "tests.viewer.hook_child", str(out), "--controller",
                             "--shm", str(shm_path), "--exit-after", "60", "--stats-json", str(tmp_path / "s.json"),
                             "win:size=320x200", "win:position=0,0", "win:title=ctltest"],
                            cwd=REPO, env=xserver.env(XDG_CONFIG_HOME=str(tmp_path)))
    try:
        wid = find_window(xserver, "^ctltest")
        xdotool(xserver, "windowfocus", "--sync", wid)
        time.sleep(0.5)   # let glfw see FocusIn first: keys typed before that are dropped on a busy machine
        xdotool(xserver, "key", "a")
        time.sleep(0.3)
        xdotool(xserver, "keydown", "Scroll_Lock", "key", "d", "keyup", "Scroll_Lock")
        time.sleep(0.3)
        xdotool(xserver, "keydown", "Scroll_Lock", "key", "q", "keyup", "Scroll_Lock")
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result = json.loads(out.read_text())
    stats = json.loads((tmp_path / "s.json").read_text())
    assert {16, 32, 33} <= set(result["combos"]), "the viewer registers Q, D, F with the controller"
    assert stats["quit_by_key"] and stats["show_stats"], "combos ran through the controller"
    sent = result["sent"]
    assert ["key_down", 0x1E] in sent and ["key_up", 0x1E] in sent, sent    # 'a' reached SPICE (set 1)
    d_scancode = 0x20
    assert ["key_down", d_scancode] not in sent, "combo keys must not reach the guest"
