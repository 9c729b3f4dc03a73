"""What the desktop tests share: a viewer started as a user would (under X11 or weston), screenshots of the
Xvfb (what weston composited, or the X11 window itself), finding the agent's test pattern in them pixel for
pixel, xdotool, and a SPICE server that records the input it receives."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.testpattern import Pattern, PatternKind, SQUARE, read_code
from tests.support.process import stop_process
from tests.support.spice_link import INPUTS, MAIN, SpiceLinkServer, send_main_init

REPO = Path(__file__).resolve().parents[2]

INPUTS_MOUSE_MOTION, INPUTS_MOUSE_POSITION = 111, 112
MOTION_ACK = 111
ACK_BUNCH = 4


class InputRecorder(SpiceLinkServer):
    """A SPICE server that offers both mouse modes and records what the inputs channel carries:
    ``motion`` (dx, dy) and ``positions`` (x, y), acknowledging motion as spice-server does."""

    def __init__(self):
        super().__init__()
        self.motion: list[tuple[int, int]] = []
        self.positions: list[tuple[int, int]] = []
        self.inputs_linked = threading.Event()

    async def channel(self, channel_type, reader, writer) -> None:
        if channel_type == MAIN:
            send_main_init(writer)
            while await reader.read(4096):
                pass
            return
        if channel_type != INPUTS:
            return await super().channel(channel_type, reader, writer)
        writer.write(struct.pack("<HIH", 101, 2, 0))
        self.inputs_linked.set()
        count = 0
        while True:
            try:
                msg_type, size = struct.unpack("<HI", await reader.readexactly(6))
                body = await reader.readexactly(size)
            except asyncio.CancelledError:     # the server stops while the viewer is still connected
                return
            if msg_type == INPUTS_MOUSE_MOTION:
                self.motion.append(struct.unpack_from("<ii", body))
            elif msg_type == INPUTS_MOUSE_POSITION:
                self.positions.append(struct.unpack_from("<II", body))
            else:
                continue
            count += 1
            if count % ACK_BUNCH == 0:
                writer.write(struct.pack("<HI", MOTION_ACK, 0))

    def motion_total(self) -> tuple[int, int]:
        return sum(m[0] for m in list(self.motion)), sum(m[1] for m in list(self.motion))


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something true (returned); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def xdotool(env: dict, *args: str) -> str:
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed: run `scripts/setup.sh test` (apt-get install xdotool)")
    proc = subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=20)
    return proc.stdout.strip()


class Screen:
    """Screenshots of one X display's root window (X GetImage: what is on the screen, weston included)."""

    def __init__(self, display: str):
        from Xlib import X, display as xdisplay
        self._X = X
        self.conn = xdisplay.Display(display)
        self.root = self.conn.screen().root

    def shot(self) -> np.ndarray:
        """The whole screen as RGB, top row first."""
        geo = self.root.get_geometry()
        reply = self.root.get_image(0, 0, geo.width, geo.height, self._X.ZPixmap, 0xFFFFFFFF)
        bgrx = np.frombuffer(reply.data, np.uint8).reshape(geo.height, geo.width, 4)
        return bgrx[..., 2::-1].copy()

    def close(self) -> None:
        self.conn.close()


def expected_body(width: int, height: int) -> tuple[np.ndarray, Pattern]:
    """The damage pattern's still field (RGB) as the agent writes it, and the Pattern (for its geometry)."""
    pat = Pattern(width, height, FrameType.BGRA, PatternKind.DAMAGE)
    return pat.render_rgba(1, 0)[..., :3], pat


def find_pattern(shot: np.ndarray, width: int, height: int) -> tuple[int, int] | None:
    """Top-left (x, y) on screen of a ``width`` x ``height`` damage test pattern shown 1:1, found by its
    first field row (red counts up from 0); None when no candidate is there."""
    body, pat = expected_body(width, height)
    row0 = body[pat.code_rows]
    n = 16
    hits = np.ones((shot.shape[0], shot.shape[1] - n), bool)
    for i in range(n):
        hits &= (shot[:, i:i + shot.shape[1] - n] == row0[i]).all(axis=2)
    ys, xs = np.nonzero(hits)
    for y, x in zip(ys, xs):
        top = int(y) - pat.code_rows
        if top >= 0 and top + height <= shot.shape[0] and x + width <= shot.shape[1]:
            return int(x), top
    return None


def pattern_mismatch(shot: np.ndarray, x0: int, y0: int, width: int, height: int,
                     ignore: tuple[int, int, int, int] | None = None) -> tuple[int, np.ndarray]:
    """(pixels that differ from the pattern's field, their mask) for the pattern at (x0, y0), leaving out the
    barcode rows (checked by decoding), the moving square's band, and ``ignore`` (x, y, w, h) in frame
    pixels. Also asserts the barcode decodes."""
    body, pat = expected_body(width, height)
    got = shot[y0:y0 + height, x0:x0 + width]
    diff = (got != body).any(axis=2)
    diff[:pat.code_rows] = False
    diff[pat.square_y:pat.square_y + SQUARE] = False
    if ignore is not None:
        ix, iy, iw, ih = ignore
        diff[max(iy, 0):max(iy + ih, 0), max(ix, 0):max(ix + iw, 0)] = False
    assert read_code(shot, x0, y0) is not None or read_code(shot[y0:, x0:x0 + width]) is not None, \
        "the barcode rows of the pattern on screen do not decode"
    return int(diff.sum()), diff


class Viewer:
    """``kvmfr-view`` in a subprocess as a user starts it; stderr collected by a thread."""

    def __init__(self, shm: Path, tmp: Path, env: dict, *options: str, exit_after: float = 60):
        self.stats = tmp / f"stats-{time.monotonic_ns()}.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kvmfr_client.cli.view", "--shm", str(shm), "-v", "--exit-after",
             str(exit_after), "--stats-json", str(self.stats), *options],
            cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="viewer-stderr", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, text: str, timeout: float = 30) -> str:
        def seen():
            for line in list(self.lines):
                if text in line:
                    return line
            assert self.proc.poll() is None, f"the viewer exited ({self.proc.returncode}):\n" + \
                "\n".join(self.lines[-30:])
            return None
        return wait_until(seen, timeout, f"{text!r} from the viewer")

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def finish(self, timeout: float = 20) -> dict:
        """Wait for the viewer to exit by itself (it was asked to quit); returns its stats JSON."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)
            raise AssertionError("the viewer did not quit:\n" + "\n".join(self.lines[-30:]))
        self._reader.join(5)
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}:\n" + "\n".join(self.lines[-30:])
        assert not any("Traceback" in line for line in self.lines), "\n".join(self.lines)
        return json.loads(self.stats.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_process(self.proc)


def run_async(coro):
    return asyncio.run(coro)
