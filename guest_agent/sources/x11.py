"""Capture a Linux guest's X11 screen and cursor (what the B7 Linux host's XCB capture does).

Frames: the root window through mss (MIT-SHM when the server has it), as BGRA. Cursor: XFixes
GetCursorImage, polled once per frame: a new shape when the cursor serial changes, a position when
the pointer moved. SETCURSORPOS from the client warps the X pointer.

An X display with several screens (one agent per screen, ``DISPLAY=:0.1``) has one pointer: XFixes
reports it to every screen's agent, so each display would draw it. The pointer is shown only on the
screen it is on (QueryPointer's same-screen flag) and hidden on the others.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from guest_agent.producer import Producer, stage_timings
from kvmfr_client.core.cursor import CursorType
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.testpattern import now_us

log = logging.getLogger(__name__)


class X11Unavailable(RuntimeError):
    """The X screen cannot be captured; the message says why and what to do, in one line."""


class X11Source:
    capture_name = "X11"

    def __init__(self, display: str | None = None):
        import mss
        from Xlib import display as xdisplay

        name = display or os.environ.get("DISPLAY")
        if not name:
            raise X11Unavailable("no X display to capture: set DISPLAY (e.g. DISPLAY=:0) or use --source testpattern")
        try:
            self._mss = mss.MSS(display=name) if hasattr(mss, "MSS") else mss.mss(display=name)
            self._monitor = self._mss.monitors[0]          # the whole X screen
            self._x = xdisplay.Display(name)
        except Exception as exc:   # mss and python-xlib each raise their own kinds for "cannot connect"
            log.debug("X display %s: %r", name, exc)
            raise X11Unavailable(f"cannot open the X display {name}: check DISPLAY and that this user may "
                                 "connect to it (XAUTHORITY), or use --source testpattern") from None
        self.width, self.height = self._monitor["width"], self._monitor["height"]
        if not self._x.has_extension("XFIXES"):
            raise X11Unavailable(f"the X server on {name} has no XFIXES extension: the cursor cannot be "
                                 "captured; use --source testpattern")
        self._x.xfixes_query_version()
        self._root = self._x.screen().root
        self._cursor_serial = None
        self._last_pos = None
        self._last_visible = None
        self._format_ver = 0
        self._size = (self.width, self.height)

    def post(self, producer: Producer, serial: int) -> int:
        t_us = now_us()
        t0 = time.monotonic_ns()
        shot = self._mss.grab(self._monitor)
        w, h = shot.size
        if (w, h) != self._size:   # the guest changed resolution: a new format version
            self._size = (w, h)
            self._format_ver += 1
        rows = np.frombuffer(shot.raw, np.uint8).reshape(h, w * 4)
        t1 = time.monotonic_ns()
        producer.begin_frame(serial, FrameType.BGRA, w, h, format_ver=self._format_ver)
        producer.write_rows(rows, 0)
        producer.end_frame(stage_timings(t1 - t0, time.monotonic_ns() - t1))
        return t_us

    def resize(self, width: int, height: int) -> bool:
        """The X screen's size is the guest's to set: a window-size request is only logged."""
        log.info("client asked for a %dx%d display; the x11 source cannot resize the X screen (it follows the "
                 "guest's own resolution)", width, height)
        return False

    def cursor_update(self, serial: int):
        """(x, y, visible, shape or None) when something changed, else None."""
        image = self._x.xfixes_get_cursor_image(self._root)
        shape = None
        if image.cursor_serial != self._cursor_serial:
            self._cursor_serial = image.cursor_serial
            shape = _shape_from_xfixes(image)
        visible = bool(self._root.query_pointer().same_screen)
        pos = (image.x - image.xhot, image.y - image.yhot)
        if shape is None and (pos, visible) == (self._last_pos, self._last_visible):
            return None
        self._last_pos, self._last_visible = pos, visible
        return pos[0], pos[1], visible, shape

    def warp(self, x: int, y: int) -> None:
        self._root.warp_pointer(x, y)
        self._x.sync()

    def close(self) -> None:
        self._mss.close()
        self._x.close()


def _shape_from_xfixes(image) -> tuple:
    """XFixes gives premultiplied ARGB words; KVMFR COLOR cursors are BGRA with straight alpha."""
    w, h = image.width, image.height
    argb = np.asarray(image.cursor_image, dtype=np.uint64).astype(np.uint32).reshape(h, w)
    bgra = argb.view(np.uint8).reshape(h, w, 4).astype(np.uint32)   # little-endian: B, G, R, A
    alpha = bgra[..., 3:4]
    straight = np.where(alpha > 0, np.minimum(bgra[..., :3] * 255 // np.maximum(alpha, 1), 255), 0)
    out = np.concatenate([straight, alpha], axis=2).astype(np.uint8)
    return CursorType.COLOR, w, h, w * 4, image.xhot, image.yhot, out.tobytes()
