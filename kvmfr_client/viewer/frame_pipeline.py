"""The frame and cursor threads: shared memory -> (native reader) -> a buffer the renderer uploads from.

The "frames" thread blocks in :meth:`Session.next_frame` (in C, GIL released) copying into one
persistent buffer, so damage-only copies work (the buffer always holds the previous frame). It then
hands the frame to the GL thread and waits until that thread has uploaded it; the GL thread releases
the buffer right after the upload, so the next copy overlaps with drawing and swapping.
On the pixel-buffer upload path (kvmfr_client/viewer/upload.py) the GL thread hands a destination with
each release instead: the next frame is copied straight into that mapped buffer (damage rectangles alone
when the frame follows the one just uploaded, since the texture holds that one).
The "cursor" thread keeps the newest cursor state. While frames come steadily (:class:`FrameRhythm`) it
reads the pointer queue when each frame arrives, without waking the GL thread (that frame's redraw shows
the cursor), or when the next frame is late; otherwise it blocks in :meth:`Session.next_cursor`, which polls
every millisecond, and wakes the GL thread for each change.
No pixel is touched by Python.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from kvmfr_client.core import testpattern
from kvmfr_client.core.cursor import CursorFlags, CursorShape

log = logging.getLogger(__name__)

_NO_CODE_GIVE_UP = 30   # frames without a test-pattern code before we stop looking for one


class FrameRhythm:
    """Whether frames come steadily, and when the next one counts as late: the frames thread keeps one (frame
    arrivals, for the cursor thread) and the GL thread another (uploads, for its cursor-only redraws, which
    wait until the next frame is late while frames come steadily: at 1080p60 with the agent's moving cursor,
    redrawing for the cursor alone made 17 % more redraws, a full present each, than frames)."""

    FRAME_LATE = 1.5      # the next frame counts as late this many frame periods after the last one
    MAX_PERIOD_S = 0.025  # frames further apart than this (below 40 fps) do not count as steady

    def __init__(self) -> None:
        # (the last frame's time, the frame period smoothed; 0: frames do not come steadily), one tuple
        # replaced whole, so a reader on another thread never pairs one frame's time with another's period
        self._state = (-1.0, 0.0)

    @property
    def last_frame(self) -> float:
        return self._state[0]

    @property
    def period(self) -> float:
        return self._state[1]

    def frame(self, now: float) -> None:
        last, period = self._state
        gap = now - last
        if 0 < gap <= self.MAX_PERIOD_S:
            period = gap if not period else 0.8 * period + 0.2 * gap
        elif gap > self.MAX_PERIOD_S:
            period = 0.0
        self._state = (now, period)

    def late_at(self) -> float | None:
        """When the next frame is late (time.monotonic()), None while frames do not come steadily."""
        last, period = self._state
        return last + self.FRAME_LATE * period if period else None


@dataclass
class FrameReady:
    frame: object            # kvmfr_client.core.session.Frame
    t_capture_us: int | None = None   # from the test pattern's barcode, when the source carries one
    slot: object = None      # the pixel buffer its pixels are in (given with release()), None: our own buffer


class FramePipeline:
    def __init__(self, session, wake: Callable[[], None], use_damage: bool = True, read_timestamps: bool = True):
        self.session = session
        self.wake = wake
        self.use_damage = use_damage
        self.read_timestamps = read_timestamps
        self._buf: np.ndarray | None = None
        self._cond = threading.Condition()
        self._ready: FrameReady | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="frames", daemon=True)
        self.last_serial: int | None = None
        self.dropped = 0
        self._no_code = 0
        self._session_id: int | None = None
        self._format: tuple | None = None
        self._force_full = False
        self._dest: tuple | None = None        # (slot, rows array) the GL thread handed for the next frame
        self._buf_current = True               # our own buffer holds the previous frame (damage is safe)
        self.error: BaseException | None = None
        self.rhythm = FrameRhythm()            # frame arrivals (read by the cursor thread)
        self.arrived = threading.Event()       # set at each frame's arrival, for the cursor thread

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self.thread.ident is not None:   # never started (a viewer whose set-up failed): nothing to join
            self.thread.join(2.0)

    def take(self) -> FrameReady | None:
        """(GL thread) the frame waiting for upload, if any; its pixels stay valid until :meth:`release`."""
        with self._cond:
            return self._ready

    def release(self, dest: tuple | None = None) -> None:
        """(GL thread) done with the pixels: the frames thread may copy the next frame, into ``dest``
        ((slot, writable (rows, pitch) uint8 array), a pixel buffer) when given, else into its own buffer."""
        with self._cond:
            self._ready = None
            self._dest = dest
            self._cond.notify_all()

    def force_full(self) -> None:
        """(GL thread) the next frame must be copied whole (the texture lost track of the previous one)."""
        self._force_full = True

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._step()
        except BaseException as exc:  # surfaced by the GL thread, which owns the window
            log.exception("frame thread failed")
            self.error = exc
            self.wake()

    def _step(self) -> None:
        dest = self._dest
        if dest is not None:
            slot, buf = dest
            keeps_previous = True       # the texture holds the frame before: damage rects alone go up
        else:
            slot, buf = None, self._buf
            keeps_previous = buf is not None and self._buf_current
        try:
            # Every frame in order (newest=False): the host keeps at most two queued, so skipping to the
            # newest saves little latency, and measured here it dropped ~3% of frames at 1080p60.
            f = self.session.next_frame(timeout=0.1, out=buf, newest=False,
                                        allow_damage=self.use_damage and keeps_previous and not self._force_full)
        except ValueError:
            # The frame grew past the buffer: the next one gets a fresh one of our own (and a full copy).
            self._buf, self._dest = None, None
            self._force_full = True
            return
        if f is None:
            return
        if slot is not None:
            self._dest = None           # one frame per pixel buffer; the GL thread hands the next
            self._buf_current = False   # our own buffer missed this frame
        else:
            self._buf_current = True
        self._force_full = False
        fmt = (f.type, f.width, f.height, f.pitch)
        if f.damage_only and fmt != self._format:
            # Damage against a frame of another format (a host that should have sent full damage):
            # the buffer is not a valid picture; skip it and take the next frame whole.
            log.warning("damage-only frame %d changed format %s -> %s; waiting for a full frame", f.serial,
                        self._format, fmt)
            self._format, self._force_full = fmt, True
            return
        self._format = fmt
        if buf is None:
            self._buf = f.pixels
            self._buf_current = True
        host = self.session.host
        session_id = host.session_id if host is not None else None
        if session_id != self._session_id:
            self._session_id, self.last_serial = session_id, None
            self._no_code = 0
        if self.last_serial is not None:
            gap = (f.serial - self.last_serial - 1) & 0xFFFFFFFF
            if 0 < gap < 1 << 16:
                self.dropped += gap
        self.last_serial = f.serial
        self.rhythm.frame(time.monotonic())
        self.arrived.set()
        ready = FrameReady(f, self._timestamp(f), slot)
        with self._cond:
            self._ready = ready
            self.wake()
            while self._ready is ready and not self._stop.is_set():
                self._cond.wait(0.1)

    def _timestamp(self, f) -> int | None:
        if not self.read_timestamps or self._no_code >= _NO_CODE_GIVE_UP:
            return None
        try:
            code = testpattern.read_stored_code(f.pixels, f.type, f.width)
        except ValueError:
            code = None
        if code is None:
            self._no_code += 1
            return None
        self._no_code = 0
        return code[2]


@dataclass
class CursorState:
    x: int = 0
    y: int = 0
    visible: bool = False
    shape: CursorShape | None = None
    shape_serial: int = 0
    t_seen_ns: int = 0
    sdr_white_level: int = 0     # KVMFR 34: the cursor's SDR white (nits); 0 from B7


class CursorTracker:
    """The "cursor" thread: keeps the newest guest cursor state and wakes the GL thread on change, paced by
    the frames of ``frames`` (a :class:`FramePipeline`) while they come steadily (the module docstring)."""

    def __init__(self, session, wake: Callable[[], None], frames: FramePipeline | None = None):
        self.session = session
        self.wake = wake
        self.frames = frames
        self.state = CursorState()
        self._lock = threading.Lock()
        self._changed = False
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cursor", daemon=True)
        self.events = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.thread.ident is not None:   # never started: nothing to join
            self.thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            # Each wake of a poll costs ~25 us of CPU here: while frames come steadily, the queue is read once
            # a frame (a change is shown by that frame's redraw, so the GL thread is not woken for it) instead
            # of every millisecond.
            paced = self._await_frame()
            try:
                ev = self.session.next_cursor(timeout=0.0 if paced is not None else 0.1)
                changed = False
                while ev is not None:
                    self._apply(ev)
                    changed = True
                    # polling: one event a wake, as it comes; paced: all that queued since the last frame
                    ev = self.session.next_cursor(timeout=0.0) if paced is not None else None
            except Exception:
                log.exception("cursor read failed")
                time.sleep(0.1)
                continue
            # Not paced (frames stopped or are late): wake the GL thread for a change read now, and for one
            # read while paced that the last frame's redraw missed (it took the cursor before it was read).
            if not paced and (changed or self._changed):
                self.wake()

    def _await_frame(self) -> bool | None:
        """While frames come steadily: wait for the next one; True when it came, False when it is late.
        None (at once) when frames do not come steadily: the caller polls the queue."""
        frames = self.frames
        if frames is None:
            return None
        late = frames.rhythm.late_at()
        wait = late - time.monotonic() if late is not None else 0.0
        if wait <= 0:
            return None
        came = frames.arrived.wait(wait)
        frames.arrived.clear()
        return came

    def _apply(self, ev) -> None:
        with self._lock:
            s = self.state
            if ev.flags & CursorFlags.POSITION:
                s.x, s.y = ev.x, ev.y
            s.visible = bool(ev.visible)
            if ev.shape is not None:
                s.shape = ev.shape
                s.shape_serial += 1
            s.t_seen_ns = ev.t_seen_ns
            s.sdr_white_level = ev.sdr_white_level
            self._changed = True
            self.events += 1

    def take(self) -> CursorState | None:
        """(GL thread) a copy of the state if it changed since the last call."""
        with self._lock:
            if not self._changed:
                return None
            self._changed = False
            s = self.state
            return CursorState(s.x, s.y, s.visible, s.shape, s.shape_serial, s.t_seen_ns, s.sdr_white_level)
