"""Watches the agent from outside through the shared memory itself (read only): is its header valid,
does its heartbeat tick, does it post frames. Offsets come from the C header through cffi.

``AgentHealth.healthy_since_ns`` is the start of the current stretch in which, on every poll, the magic
was LGMP's, the session id did not change, the heartbeat advanced within 250 ms and a frame was posted
within 1 s (the frame queue's ``position`` moved). While the vandal is quiet that is the agent's honest
state; readers are judged only against such stretches.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time

from kvmfr_client.core.native import ffi, lib

HEADER = "struct lgmp_header"
QUEUE = "struct lgmp_header_queue"
HEARTBEAT_STALE_NS = 250_000_000
POST_STALE_NS = 1_000_000_000


def _off(struct_name: str, field: str) -> int:
    return ffi.offsetof(struct_name, field)


class AgentHealth:
    def __init__(self, path: str, interval_s: float = 0.005):
        self.path, self.interval_s = path, interval_s
        self.healthy_since_ns: int | None = None
        self.session_id: int | None = None
        self.sessions_seen = 0
        self.session_started_ns: int | None = None   # when the current session id first showed up valid
        self._last_hb = self._last_pos = None
        self._hb_changed_ns = self._pos_changed_ns = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="soak-shmwatch")
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)

    def healthy(self) -> bool:
        return self.healthy_since_ns is not None

    def _read(self, mm) -> tuple[int, int, int, int | None]:
        (magic,) = struct.unpack_from("<I", mm, _off(HEADER, "magic"))
        (sid,) = struct.unpack_from("<I", mm, _off(HEADER, "sessionID"))
        (hb,) = struct.unpack_from("<Q", mm, _off(HEADER, "timestamp"))
        (nq,) = struct.unpack_from("<I", mm, _off(HEADER, "numQueues"))
        pos = None
        for i in range(min(nq, lib.LGMP_MAX_QUEUES)):
            base = _off(HEADER, "queues") + i * ffi.sizeof(QUEUE)
            (qid,) = struct.unpack_from("<I", mm, base + _off(QUEUE, "queueID"))
            if qid == lib.LGMP_Q_FRAME:
                (pos,) = struct.unpack_from("<I", mm, base + _off(QUEUE, "position"))
        return magic, sid, hb, pos

    def _run(self) -> None:
        mm = None
        fd = -1
        while not self._stop.is_set():
            now = time.monotonic_ns()
            try:
                if mm is None:
                    fd = os.open(self.path, os.O_RDONLY)
                    if os.fstat(fd).st_size < ffi.sizeof(HEADER):
                        os.close(fd)
                        fd = -1
                        raise OSError("too small")
                    mm = mmap.mmap(fd, ffi.sizeof(HEADER), prot=mmap.PROT_READ)
                magic, sid, hb, pos = self._read(mm)
            except (OSError, ValueError):
                self.healthy_since_ns = None
                self._stop.wait(0.05)
                continue
            ok = magic == lib.LGMP_PROTOCOL_MAGIC and pos is not None
            if ok and sid != self.session_id:
                self.session_id = sid
                self.sessions_seen += 1
                self.session_started_ns = now
                self.healthy_since_ns = None
                self._hb_changed_ns = self._pos_changed_ns = now
            if hb != self._last_hb:
                self._last_hb, self._hb_changed_ns = hb, now
            if pos != self._last_pos:
                self._last_pos, self._pos_changed_ns = pos, now
            ok = ok and now - self._hb_changed_ns < HEARTBEAT_STALE_NS and now - self._pos_changed_ns < POST_STALE_NS
            if not ok:
                self.healthy_since_ns = None
            elif self.healthy_since_ns is None:
                self.healthy_since_ns = now
            self._stop.wait(self.interval_s)
        if mm is not None:
            mm.close()
        if fd >= 0:
            os.close(fd)


MESSAGE = "struct lgmp_header_message"
FRAME = "struct kvmfr_frame"


class FrameWatch:
    """Reads the newest frame's state from the whole file (read only): is the agent writing it right now
    (its write pointer short of the frame's size), and the frame queue's position. Every value is copied,
    then checked against the file size before it is followed."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size
        self.mm = mmap.mmap(self.fd, self.size, prot=mmap.PROT_READ)

    def close(self) -> None:
        self.mm.close()
        os.close(self.fd)

    def _u32(self, at: int) -> int | None:
        return struct.unpack_from("<I", self.mm, at)[0] if 0 <= at <= self.size - 4 else None

    def _frame_queue(self) -> int | None:
        nq = self._u32(_off(HEADER, "numQueues")) or 0
        for i in range(min(nq, lib.LGMP_MAX_QUEUES)):
            base = _off(HEADER, "queues") + i * ffi.sizeof(QUEUE)
            if self._u32(base + _off(QUEUE, "queueID")) == lib.LGMP_Q_FRAME:
                return base
        return None

    def position(self) -> int | None:
        q = self._frame_queue()
        return None if q is None else self._u32(q + _off(QUEUE, "position"))

    def mid_write(self) -> bool:
        """The newest frame is posted and its pixels are still being written."""
        q = self._frame_queue()
        if q is None:
            return False
        n, pos, ring = (self._u32(q + _off(QUEUE, f)) for f in ("numMessages", "position", "messagesOffset"))
        if not n or n > 64 or pos is None or ring is None:
            return False
        slot = ring + ((pos + n - 1) % n) * ffi.sizeof(MESSAGE)
        frame = self._u32(slot + _off(MESSAGE, "offset"))
        if frame is None or frame + ffi.sizeof(FRAME) > self.size:
            return False
        pitch, rows, buf = (self._u32(frame + _off(FRAME, f)) for f in ("pitch", "dataHeight", "offset"))
        wp = self._u32(frame + (buf or 0)) if buf is not None else None
        return wp is not None and pitch is not None and rows is not None and wp < pitch * rows
