"""Several displays in one ``kvmfr-view`` process (``--displays A,B``): one window per display, each showing
its own agent's frames and cursor exactly, input from a window tagged with that window's display, and a
window closed by the user leaving the other open. One viewer process, one SPICE connection, for all of it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from guest_agent import cursor_animation
from kvmfr_client.core import testpattern
from kvmfr_client.core.cursor import CursorShape, CursorType, composite
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.testpattern import Pattern, PatternKind
from kvmfr_client.spice.protocol import KEY_CODE, MOUSE_POSITION, InputsClientMsg
from tests.support.process import stop_process, wait_for
from tests.support.spice_link import INPUTS, MAIN, SESSION_ID, SpiceLinkServer
from tests.viewer.agent import start_agent, wait_viewer_watching
from tests.viewer.helpers import REPO, rgb_diff
from tests.viewer.multi_windows import close_like_its_button, find_window, xdotool

SIZE = (320, 240)
KEY_A = 0x1E   # set-1 scancode


class InputsRecorder(SpiceLinkServer):
    """A SPICE server in client (absolute) mouse mode that records what arrives on the inputs channel."""

    def __init__(self):
        super().__init__()
        self.inputs: list[tuple[int, bytes]] = []

    async def channel(self, channel_type: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if channel_type == MAIN:   # INIT: both mouse modes offered, client mode current, no agent
            init = struct.pack("<8I", SESSION_ID, 1, 3, 2, 0, 0, 0, 0)
            writer.write(struct.pack("<HI", 103, len(init)) + init)
        elif channel_type == INPUTS:
            writer.write(struct.pack("<HIH", 101, 2, 0))
        while True:
            msg_type, size = struct.unpack("<HI", await reader.readexactly(6))
            payload = await reader.readexactly(size)
            if channel_type == INPUTS:
                self.inputs.append((msg_type, payload))

    def positions(self) -> list[tuple[int, int, int]]:
        """(x, y, display_id) of every MOUSE_POSITION so far."""
        out = []
        for msg_type, payload in list(self.inputs):
            if msg_type == InputsClientMsg.MOUSE_POSITION:
                x, y, _buttons, display = MOUSE_POSITION.unpack(payload)
                out.append((x, y, display))
        return out

    def keys_down(self) -> list[int]:
        return [KEY_CODE.unpack(p)[0] for t, p in list(self.inputs) if t == InputsClientMsg.KEY_DOWN]


def near(positions: list[tuple[int, int, int]], want: tuple[int, int, int]) -> bool:
    """A position on display want[2] within a pixel of want (the pointer's rounding into the picture)."""
    return any(d == want[2] and abs(x - want[0]) <= 1 and abs(y - want[1]) <= 1 for x, y, d in positions)


def expected_picture(snap: np.ndarray, kind: PatternKind, cursor: dict) -> np.ndarray:
    """The agent's frame named by the barcode in the window, with the agent's cursor drawn at the place
    the window says it put it."""
    code = testpattern.read_code(snap)
    assert code is not None, "no test-pattern barcode in the window: the frame did not reach the screen"
    _, serial, t_us = code
    frame = Pattern(SIZE[0], SIZE[1], FrameType.BGRA, kind).render_rgba(serial, t_us)
    assert cursor["visible"] and cursor["type"] is not None, cursor
    make = {0: cursor_animation.color_arrow, 1: cursor_animation.monochrome,
            2: cursor_animation.masked_color}[cursor["type"]]
    ctype, w, h, pitch, hx, hy, data = make()
    shape = CursorShape(ctype, w, h // 2 if ctype == CursorType.MONOCHROME else h, hx, hy, pitch, data)
    return composite(frame, shape, cursor["x"], cursor["y"]), frame


def test_two_displays_in_one_viewer(xserver, tmp_path, shm_path):
    """Two agents (the moving test pattern and the damage pattern) into two files; one kvmfr-view shows both
    in two windows, pixel for pixel with each agent's cursor; a key and the mouse in window 2 reach the one
    SPICE connection, the mouse tagged display 1 (window 1's display 0); closing window 1 leaves window 2."""
    shm_b = shm_path.with_name(shm_path.name + "-b")
    agents = [start_agent(shm_path, SIZE, fps=30), start_agent(shm_b, SIZE, fps=30, source="damage")]
    viewer = None
    log_path = tmp_path / "viewer.log"
    try:
        with InputsRecorder() as spice, open(log_path, "wb") as log:
            viewer = subprocess.Popen(
                [sys.executable, "-m", "kvmfr_client.cli.view", "--displays", f"{shm_path},{shm_b}", "-v",
                 "--exit-after", "120", "--stats-json", str(tmp_path / "stats.json"),
                 "--snapshot", str(tmp_path / "snap.npy"), f"win:size={SIZE[0]}x{SIZE[1]}",
                 "spice:host=127.0.0.1", f"spice:port={spice.port}"],
                cwd=REPO, env=xserver.env(XDG_CONFIG_HOME=str(tmp_path / "xdg")), stdout=log,
                stderr=subprocess.STDOUT)
            wait_viewer_watching(shm_path)
            wait_viewer_watching(shm_b)
            win1, win2 = find_window(xserver, "display 1 of 2"), find_window(xserver, "display 2 of 2")
            assert win1 != win2
            xdotool(xserver, "windowmove", "--sync", win2, str(SIZE[0] + 40), "0")   # Xvfb has no window manager
            wait_for(lambda: INPUTS in spice.linked, 20, "the viewer's SPICE inputs channel")
            assert spice.linked.count(MAIN) == 1, "one SPICE connection for both windows"

            # window 2 has the focus: the pointer inside it goes to display 1, the key to the keyboard
            xdotool(xserver, "windowfocus", "--sync", win2)
            xdotool(xserver, "mousemove", "--window", win2, "100", "50")
            wait_for(lambda: near(spice.positions(), (100, 50, 1)), 10, "a position on display 1")
            xdotool(xserver, "key", "a")
            wait_for(lambda: KEY_A in spice.keys_down(), 10, "KEY_A down")
            # window 1 has it: display 0
            xdotool(xserver, "windowfocus", "--sync", win1)
            xdotool(xserver, "mousemove", "--window", win1, "30", "40")
            wait_for(lambda: near(spice.positions(), (30, 40, 0)), 10, "a position on display 0")
            assert {d for _, _, d in spice.positions()} == {0, 1}

            # the user closes window 1: it writes its own stats and snapshot; window 2 stays
            close_like_its_button(xserver, win1)
            wait_for(lambda: (tmp_path / "snap-1.npy").exists() and (tmp_path / "stats-1.json").exists(), 20,
                     f"window 1 to close:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.5)
            assert viewer.poll() is None, "closing one window must leave the viewer running"
            assert xdotool(xserver, "search", "--name", "display 2 of 2"), "window 2 closed with window 1"
            assert not xdotool(xserver, "search", "--name", "display 1 of 2")
            viewer.send_signal(signal.SIGTERM)
            viewer.wait(30)
        assert viewer.returncode == 0, log_path.read_text()[-3000:]
    finally:
        if viewer is not None and viewer.poll() is None:
            stop_process(viewer)
        for a in agents:
            stop_process(a)
        shm_b.unlink(missing_ok=True)

    for n, kind in ((1, PatternKind.MOVING), (2, PatternKind.DAMAGE)):
        stats = json.loads((tmp_path / f"stats-{n}.json").read_text())
        snap = np.load(tmp_path / f"snap-{n}.npy")
        assert stats["shm"] == str(shm_path if n == 1 else shm_b) and stats["state"] == "CONNECTED", stats
        assert f"display {n} of 2" in stats["title"], stats["title"]
        assert stats["frames_shown"] >= 10, stats
        want, frame = expected_picture(snap, kind, stats["cursor"])
        assert rgb_diff(snap, want) <= 1, f"window {n} does not show its agent's frame and cursor"
        assert rgb_diff(snap, frame) > 0, f"window {n}: the cursor must be visible"
    # two different pictures: each window shows its own display
    assert rgb_diff(np.load(tmp_path / "snap-1.npy"), np.load(tmp_path / "snap-2.npy")) > 0


def test_close_all_closes_every_window_with_one(xserver, tmp_path, shm_path):
    """win:closeAll=yes: the user closes window 1 and the viewer closes window 2 too, each writing its stats
    (no host yet: both windows wait), and ends with 0."""
    shm_b = shm_path.with_name(shm_path.name + "-b")
    viewer = subprocess.Popen(
        [sys.executable, "-m", "kvmfr_client.cli.view", "--displays", f"{shm_path},{shm_b}", "win:closeAll=yes",
         "spice:enable=no", "--exit-after", "60", "--stats-json", str(tmp_path / "stats.json"), "win:size=200x150"],
        cwd=REPO, env=xserver.env(XDG_CONFIG_HOME=str(tmp_path / "xdg")), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        win1 = find_window(xserver, "display 1 of 2")
        find_window(xserver, "display 2 of 2")
        close_like_its_button(xserver, win1)
        out = viewer.communicate(timeout=30)[0]
    finally:
        if viewer.poll() is None:
            stop_process(viewer)
    assert viewer.returncode == 0, out[-3000:]
    for n, path in ((1, shm_path), (2, shm_b)):
        stats = json.loads((tmp_path / f"stats-{n}.json").read_text())
        assert stats["shm"] == str(path) and stats["state"] != "CONNECTED"


def test_a_display_file_that_cannot_be_used_is_refused_before_any_window(tmp_path):
    from kvmfr_client.core import errors
    from kvmfr_client.viewer.multi import check_display_files
    good = tmp_path / "good"
    good.write_bytes(b"\0" * 4096)
    check_display_files([str(good), str(tmp_path / "not-there-yet")])   # a missing file is waited for
    with pytest.raises(errors.ShmNotUsable, match="is a folder"):
        check_display_files([str(good), str(tmp_path)])
    locked = tmp_path / "locked"
    locked.write_bytes(b"\0" * 4096)
    locked.chmod(0o400)
    if os.geteuid() != 0:
        with pytest.raises(errors.ShmNotUsable, match="permission denied"):
            check_display_files([str(good), str(locked)])
