"""The agent's X11 source on a real X server: frames, cursor shape/position and SETCURSORPOS."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import kvmfr_client
from kvmfr_client.core.formats import decode
from tests.support.xvfb import start_xvfb

BARS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (18, 52, 86), (192, 128, 64), (1, 254, 127), (255, 255, 255), (0, 0, 0)]

PAINTER = """
import sys, time
from Xlib import X, display
d = display.Display()
screen = d.screen()
win = screen.root.create_window(0, 0, 640, 480, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
                                override_redirect=True, background_pixel=0)
win.map()
gc = win.create_gc()
bars = %r
for i, (r, g, b) in enumerate(bars):
    gc.change(foreground=(r << 16) | (g << 8) | b)
    win.fill_rectangle(gc, i * 80, 0, 80, 480)
d.sync()
print("painted", flush=True)
time.sleep(120)
"""


@pytest.fixture
def xscreen():
    server = start_xvfb(640, 480)
    painter = subprocess.Popen([sys.executable, "-c", PAINTER % (BARS,)], env=server.env(), stdout=subprocess.PIPE,
                               text=True)
    assert painter.stdout.readline().strip() == "painted"
    subprocess.run(["xdotool", "mousemove", "300", "200"], env=server.env(), check=True)
    yield server
    painter.kill()
    painter.wait()
    server.stop()


def test_x11_capture_frames_cursor_and_warp(xscreen, shm_path):
    agent = subprocess.Popen([sys.executable, "-m", "guest_agent", "--shm", str(shm_path), "--source", "x11",
                              "--fps", "30"], env=xscreen.env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not shm_path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        with kvmfr_client.open(shm_path, wait=10) as s:
            assert s.host.capture == "X11" and s.host.can_set_cursor_pos
            frame = None
            while frame is None and time.monotonic() < deadline:
                frame = s.next_frame(timeout=0.5)
            assert frame is not None and (frame.width, frame.height) == (640, 480)
            rgb = decode(frame.pixels, frame.type, frame.width)[..., :3]
            for i, colour in enumerate(BARS):
                assert tuple(rgb[100, i * 80 + 40]) == colour, f"bar {i}"
            shape = event = None
            while time.monotonic() < deadline and (shape is None or event is None):
                ev = s.next_cursor(timeout=0.2)
                if ev is not None:
                    shape = ev.shape or shape
                    event = ev if ev.has_position else event
            assert shape is not None and shape.width > 0
            assert (event.x + shape.hx, event.y + shape.hy) == (300, 200)

            s.set_cursor_pos(500, 400)
            loc = ""
            while time.monotonic() < deadline + 5 and "x:500 y:400" not in loc:
                loc = subprocess.run(["xdotool", "getmouselocation"], env=xscreen.env(), capture_output=True,
                                     text=True).stdout
                s.next_frame(timeout=0.05)
            assert "x:500 y:400" in loc
    finally:
        agent.terminate()
        agent.wait(10)
    assert agent.returncode == 0, agent.stderr.read()


def test_x11_in_master_mode_frames_timings_setcursorpos_and_no_resize(xscreen, shm_path):
    """--protocol master on a real X screen, read as a master client would from raw memory: the bars in a
    KVMFR 34 frame with the agent's stage timings, SETCURSORPOS warps the X pointer, and a window-size
    request is answered with a log line (the X screen is the guest's to size)."""
    import struct

    from kvmfr_client.core.native import lib
    from tests.guest_agent.master_region import FRAME_INDEX, MasterRegion, window_size_message

    agent = subprocess.Popen([sys.executable, "-m", "guest_agent", "--shm", str(shm_path), "--source", "x11",
                              "--fps", "30", "--protocol", "master", "-v"], env=xscreen.env(),
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not (shm_path.exists() and shm_path.stat().st_size > lib.LGMP12_HEADER_SIZE) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        r = MasterRegion(str(shm_path))
        while r.u32(lib.LGMP12_MAGIC_OFFSET) != lib.LGMP_PROTOCOL_MAGIC and time.monotonic() < deadline:
            time.sleep(0.02)
        r.subscribe(0, 1)
        blk = None
        while time.monotonic() < deadline:
            if r.qu32(FRAME_INDEX, "count"):
                m = r.message(FRAME_INDEX, r.qu32(FRAME_INDEX, "start"))
                if r.frame_u32(m["offset"], "timingValid"):
                    blk = m["offset"]
                    break
            time.sleep(0.02)
        assert blk is not None, "no finished frame in master mode"
        assert (r.frame_u32(blk, "frameWidth"), r.frame_u32(blk, "frameHeight")) == (640, 480)
        assert r.frame_u32(blk, "timingSerial") == r.frame_u32(blk, "frameSerial")
        assert r.frame_u64(blk, "copyTime") > 0 and r.frame_u32(blk, "sdrWhiteLevel") == 203
        data = blk + r.frame_u32(blk, "offset") + 4
        px = r.mm[data + 100 * 2560 + 40 * 4: data + 100 * 2560 + 40 * 4 + 3]
        assert tuple(px[::-1]) == BARS[0]      # BGRX in memory

        r.send(0, 1, struct.pack("<Iii", lib.KVMFR_MESSAGE_SETCURSORPOS, 500, 400))
        r.send(1, 1, window_size_message(800, 600))
        loc = ""
        while time.monotonic() < deadline + 5 and "x:500 y:400" not in loc:
            loc = subprocess.run(["xdotool", "getmouselocation"], env=xscreen.env(), capture_output=True,
                                 text=True).stdout
            time.sleep(0.05)
        assert "x:500 y:400" in loc
        r.close()
    finally:
        agent.terminate()
        agent.wait(10)
    err = agent.stderr.read()
    assert agent.returncode == 0, err
    assert "cannot resize" in err, err


def test_two_x_screens_show_the_one_pointer_only_on_the_screen_it_is_on():
    """One X display with two screens, an agent's source on each (what a two-display VM runs): X has one
    pointer, which XFixes reports to both; only the screen the pointer is on shows it."""
    from guest_agent.sources.x11 import X11Source

    server = start_xvfb(320, 240, screens=2)
    sources = []
    try:
        sources = [X11Source(f"{server.display}.{n}") for n in (0, 1)]

        def visible_after_move(screen: int, x: int, y: int) -> list:
            subprocess.run(["xdotool", "mousemove", "--screen", str(screen), str(x), str(y)], env=server.env(),
                           check=True)
            shown = [None, None]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and shown[screen] is not True:
                for n, src in enumerate(sources):
                    update = src.cursor_update(1)
                    if update is not None:
                        shown[n] = update[2]
                time.sleep(0.02)
            return shown

        assert visible_after_move(1, 100, 80) == [False, True]
        assert visible_after_move(0, 50, 60) == [False, True][::-1]
        assert visible_after_move(1, 10, 10) == [False, True]
    finally:
        for src in sources:
            src.close()
        server.stop()
