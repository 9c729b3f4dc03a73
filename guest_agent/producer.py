"""Python face of the native producer, B7 (LGMP 6 / KVMFR 20) or master (LGMP 12 / KVMFR 34), used by the
guest agent and the tests."""

from __future__ import annotations

import logging
import platform
import stat
import threading
import time
from dataclasses import dataclass

import numpy as np

from kvmfr_client.core import errors
from kvmfr_client.core.native import check, cstr, ffi, lib, new_error
from kvmfr_client.core.session import HostTimings, check_shm_file
from kvmfr_client.core.cursor import CursorFlags, CursorType
from kvmfr_client.core.formats import PACKED_24, FrameType, data_width, row_bytes


log = logging.getLogger(__name__)

# Native waits run in slices this long, so the calling thread gets back to Python (signal handlers,
# interrupt()) several times a second however long the caller's timeout is.
WAIT_SLICE_S = 0.05
REOPEN_EVERY_S = 0.2      # while the file is gone or too small: how often to look again


# --protocol's values: the LGMP version each one writes (the KVMFR version follows from it).
PROTOCOLS = {"b7": int(lib.LGMP_PROTOCOL_VERSION), "master": int(lib.LGMP12_PROTOCOL_VERSION)}

# KVMFR 34's HDR metadata units (wire_master.h): chromaticity in 0.00002, minimum luminance in 0.0001 nits.
CHROMA_UNIT = 0.00002
MIN_LUMINANCE_UNIT = 0.0001


def hdr_to_native(fi, hdr) -> None:
    """Write HdrMetadata (natural units, kvmfr_client.core.session) into a kv_frame_info and flag it."""
    fi.flags |= lib.FRAME_FLAG_HDR_METADATA
    for i, (x, y) in enumerate(hdr.primaries):
        fi.hdr_primaries[2 * i], fi.hdr_primaries[2 * i + 1] = round(x / CHROMA_UNIT), round(y / CHROMA_UNIT)
    fi.hdr_white_point[0] = round(hdr.white_point[0] / CHROMA_UNIT)
    fi.hdr_white_point[1] = round(hdr.white_point[1] / CHROMA_UNIT)
    fi.hdr_max_luminance = round(hdr.max_luminance)
    fi.hdr_min_luminance = round(hdr.min_luminance / MIN_LUMINANCE_UNIT)
    fi.hdr_max_cll, fi.hdr_max_fall = int(hdr.max_cll), int(hdr.max_fall)


def stage_timings(capture_ns: int, copy_ns: int, post_process_ns: int = 0) -> HostTimings:
    """The agent's own stage durations for one frame (ns): it schedules nothing, so ready/hold/lead are 0."""
    return HostTimings(capture_ns=capture_ns, post_process_ns=post_process_ns, copy_ns=copy_ns, ready_ns=0,
                       hold_ns=0, ready_lead_ns=0)


@dataclass
class HostDescription:
    hostver: str = "kvmfr-agent 0.1"
    capture: str = "synthetic"
    os: int = lib.KVMFR_OS_LINUX
    os_name: str = ""
    features: int = 0
    cpus: int = 0
    cores: int = 0
    sockets: int = 1
    model: str = ""
    uuid: bytes = bytes(16)
    protocol: str = "b7"          # a PROTOCOLS key

    @property
    def is_master(self) -> bool:
        return self.protocol == "master"

    def to_native(self):
        info = ffi.new("struct kv_host_info *")
        info.lgmp_version = PROTOCOLS[self.protocol]
        info.hostver = self.hostver.encode()[:31]
        info.capture = self.capture.encode()[:31]
        info.os = self.os
        info.os_name = (self.os_name or f"{platform.system()} {platform.release()}").encode()[:127]
        info.features = self.features
        info.cpus, info.cores, info.sockets = self.cpus, self.cores, self.sockets
        info.model = (self.model or platform.machine()).encode()[:127]
        ffi.memmove(info.uuid, self.uuid[:16].ljust(16, b"\0"), 16)
        return info


class Producer:
    """An LGMP host session on a shared-memory file, with a native 10 ms tick thread."""

    def __init__(self, path: str, create_size: int = 0, host: HostDescription | None = None,
                 tick_ms: int = 10, start: bool = True):
        self.path = str(path)
        self._p = ffi.gc(lib.kv_producer_new(), lib.kv_producer_free)
        self._err = new_error()
        check(lib.kv_producer_open(self._p, self.path.encode(), create_size, self._err), self._err)
        self.host = host or HostDescription()
        self.tick_ms = tick_ms
        self._fi = ffi.new("struct kv_frame_info *")
        self._changed = ffi.new("struct kvmfr_damage_rect[]", lib.KVMFR_MAX_DAMAGE_RECTS)
        self._timing = ffi.new("struct kv_frame_info *")
        self._ci = ffi.new("struct kv_cursor_info *")
        self._msg = ffi.new("uint8_t[64]")
        self._msg_size = ffi.new("uint32_t *")
        self._interrupted = threading.Event()
        self._in_frame = False
        self._reinits_seen = 0
        self._reinit_logged_at = 0.0
        self._lost_size = ffi.new("uint64_t *")
        self._size = self.shm_size          # what the file must be again before we use it
        self._lost = False                  # the file shrank or vanished: waiting for it
        self._next_look = 0.0
        self._waiting_said = ""
        if start:
            self.start()

    @property
    def shm_size(self) -> int:
        return int(lib.kv_producer_shm_size(self._p))

    @property
    def session_id(self) -> int:
        return int(lib.kv_producer_session_id(self._p))

    @property
    def max_frame_size(self) -> int:
        return int(lib.kv_producer_max_frame_size(self._p))

    def start(self) -> None:
        """(Re)initialise the session: a fresh session id, queues and buffers; starts the tick thread."""
        lib.kv_producer_stop_ticker(self._p)
        check(lib.kv_producer_start(self._p, self.host.to_native(), self._err), self._err)
        if self.tick_ms:
            lib.kv_producer_start_ticker(self._p, self.tick_ms)

    def stop(self) -> None:
        lib.kv_producer_stop_ticker(self._p)
        lib.kv_producer_stop(self._p)

    def stop_ticker(self) -> None:
        """Stop the heartbeat without clearing the session (what a hung or killed host looks like)."""
        lib.kv_producer_stop_ticker(self._p)

    def tick(self) -> int:
        if not self.region_ok():
            return int(lib.KV_ERR_NOT_READY)
        return int(lib.kv_producer_tick(self._p))

    def subscribers(self, queue_id: int = lib.LGMP_Q_FRAME) -> int:
        if not self.region_ok():
            return 0
        self._report_reinits()
        return int(lib.kv_producer_subscribers(self._p, queue_id))

    # ---- the file under the mapping -------------------------------------------------------------

    def region_ok(self) -> bool:
        """Whether the mapping is backed by its file. When the file shrank or was removed (a SIGBUS
        inside the mapping is caught by the native guard and reads zeros), say so once, drop the
        mapping, and from then on look again every REOPEN_EVERY_S: a removed file is created again at
        its old size; one that is too small is waited for. When it is back, a new session starts."""
        if not self._lost:
            why = int(lib.kv_producer_shm_lost(self._p, self._lost_size))
            if not why:
                return True
            if why == lib.KV_LOST_REMOVED:
                what = "was removed"
            elif why == lib.KV_LOST_SHRANK:
                what = f"shrank (to {int(self._lost_size[0])} bytes)"
            else:
                what = "went away"
            log.warning("the shared memory file %s %s under the agent; it will be used again once it is back "
                        "at %d bytes", self.path, what, self._size)
            lib.kv_producer_close(self._p)
            self._lost, self._in_frame, self._next_look, self._waiting_said = True, False, 0.0, ""
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + REOPEN_EVERY_S
        try:
            st = check_shm_file(self.path)
        except errors.ShmNotUsable as exc:
            self._say_waiting(f"{exc}; waiting for that to change")
            return False
        if st is not None and stat.S_ISREG(st.st_mode) and st.st_size < self._size:
            self._say_waiting(f"waiting for {self.path} to be {self._size} bytes again (it is {st.st_size}): "
                              f"the agent does not resize a file someone else made smaller")
            return False
        err = new_error()
        if lib.kv_producer_open(self._p, self.path.encode(), self._size if st is None else 0, err) != lib.LGMP_OK:
            self._say_waiting(f"cannot use {self.path} yet: {cstr(err.message)}")
            return False
        try:
            self.start()
        except errors.KvmfrError as exc:
            lib.kv_producer_close(self._p)
            self._say_waiting(f"cannot start on {self.path} yet: {exc}")
            return False
        self._lost = False
        self._reinits_seen = self.reinits   # repairs of the zero pages while it was away are not news
        log.warning("the shared memory file %s is back%s: started a new session", self.path,
                    " (created again)" if st is None else "")
        return True

    def _say_waiting(self, message: str) -> None:
        if message != self._waiting_said:
            log.warning("%s", message)
            self._waiting_said = message

    @property
    def reinits(self) -> int:
        """How often the region was found overwritten and re-initialised with a new session id."""
        return int(lib.kv_producer_reinit_count(self._p, ffi.NULL))

    def interrupt(self) -> None:
        """Make a wait in progress (and any later one) give up at once: for signal handlers, so the
        program ends within a wait slice even while clients or a vandal keep the queue full."""
        self._interrupted.set()

    def _report_reinits(self) -> None:
        """Say (at most once a second) that the region was overwritten and re-initialised."""
        why = new_error()
        n = int(lib.kv_producer_reinit_count(self._p, why))
        if n == self._reinits_seen:
            return
        now = time.monotonic()
        if now - self._reinit_logged_at >= 1.0:
            log.warning("the shared memory %s was overwritten by someone else (%s): started a new session, "
                        "as after a host restart (%d time(s) so far)", self.path, cstr(why.message), n)
            self._reinit_logged_at = now
        self._reinits_seen = n

    # ---- frames ------------------------------------------------------------------------------

    def begin_frame(self, serial: int, ftype: FrameType, width: int, height: int, pitch: int | None = None,
                    damage=(), flags: int = 0, format_ver: int = 0, rotation: int = 0,
                    screen: tuple[int, int] | None = None, data_height: int | None = None,
                    timeout: float = 2.0, sdr_white_level: int = 0, hdr=None, changed=None) -> bool:
        """Describe and post the next frame; its rows follow with :meth:`write_rows`. Waits up to
        ``timeout`` s for clients to finish older frames (KvmfrTimeout after that). Returns False when
        the frame was dropped because :meth:`interrupt` was called or the file is away (see
        :meth:`region_ok`); the writes that follow are then no-ops. Master sessions also write
        ``sdr_white_level`` (0: the default, 203 nits) and ``hdr`` (an HdrMetadata, or None). ``changed``:
        rects (x, y, w, h) of what this frame changes in the picture when that is less than ``damage``
        says (a frame sent whole): :meth:`write_damage` then rewrites only those in the slot."""
        self._in_frame = False
        if not self.region_ok():
            self._interrupted.wait(min(timeout, WAIT_SLICE_S))   # no busy loop while the file is away
            return False
        self._report_reinits()
        fi = self._fi
        ffi.memmove(fi, bytes(ffi.sizeof("struct kv_frame_info")), ffi.sizeof("struct kv_frame_info"))
        fi.serial = serial & 0xFFFFFFFF
        fi.format_ver = format_ver
        fi.type = int(ftype)
        fi.frame_width, fi.frame_height = width, height
        fi.screen_width, fi.screen_height = screen or (width, height)
        fi.data_width = data_width(ftype, width)
        fi.data_height = height if data_height is None else data_height
        fi.pitch = pitch or row_bytes(ftype, width)
        fi.stride = fi.data_width if ftype not in PACKED_24 else 0
        fi.rotation = rotation
        fi.flags = flags
        fi.sdr_white_level = sdr_white_level
        if hdr is not None and self.host.is_master:   # B7 frames have no HDR metadata
            hdr_to_native(fi, hdr)
        damage = list(damage)
        fi.damage_count = len(damage)
        for i, (x, y, w, h) in enumerate(damage):
            fi.damage[i].x, fi.damage[i].y, fi.damage[i].width, fi.damage[i].height = x, y, w, h
        n_changed = -1
        if changed is not None:
            changed = list(changed)
            n_changed = len(changed)
            rects = self._changed
            for i, (x, y, w, h) in enumerate(changed[: len(rects)]):
                rects[i].x, rects[i].y, rects[i].width, rects[i].height = x, y, w, h
        deadline = time.monotonic() + timeout
        while True:
            if self._interrupted.is_set():
                return False
            if n_changed >= 0:   # each frame_begin call clears them, whatever it returns
                lib.kv_producer_set_changed(self._p, self._changed, n_changed)
            left = deadline - time.monotonic()
            rc = lib.kv_producer_frame_begin(self._p, fi, int(max(0.0, min(left, WAIT_SLICE_S)) * 1000), self._err)
            if rc != lib.KV_ERR_TIMEOUT or left <= WAIT_SLICE_S:
                break
        check(rc, self._err)
        self._in_frame = True
        return True

    def _rows_pointer(self, rows: np.ndarray):
        """Pointer to rows (n, >=pitch) uint8 whose rows are contiguous; strided views are fine."""
        if rows.ndim != 2 or rows.dtype != np.uint8 or rows.strides[1] != 1 or rows.strides[0] <= 0:
            raise ValueError("rows must be a 2-D uint8 array with contiguous rows")
        if rows.shape[1] < self._fi.pitch:
            raise ValueError(f"rows are {rows.shape[1]} bytes wide; the frame pitch is {self._fi.pitch}")
        return ffi.cast("uint8_t *", rows.ctypes.data)

    def write_rows(self, rows: np.ndarray, row0: int = 0) -> None:
        """Write stored rows at frame row ``row0``, publishing the write pointer as it goes."""
        if not self._in_frame:
            return
        ptr = self._rows_pointer(rows)
        check(lib.kv_producer_frame_write(self._p, ptr, rows.strides[0], row0, rows.shape[0], self._err), self._err)

    def write_damage(self, rows: np.ndarray) -> None:
        """Write only what changed in this slot since it was last written (the whole frame's rows given)."""
        if rows.shape[0] < self._fi.data_height:
            raise ValueError("write_damage needs every row of the frame")
        if not self._in_frame:
            return
        ptr = self._rows_pointer(rows)
        check(lib.kv_producer_frame_write_damage(self._p, ptr, rows.strides[0], self._err), self._err)

    def end_frame(self, timings: HostTimings | None = None) -> None:
        """Finish the frame; a master session also publishes ``timings`` for it (timingValid)."""
        if self._in_frame:
            if timings is None:
                lib.kv_producer_frame_end(self._p)
            else:
                t = self._timing
                for name in HostTimings.STAGES:
                    setattr(t, f"host_{name}_ns", getattr(timings, f"{name}_ns"))
                t.timing_flags = lib.KVMFR_FRAME_TIMING_PHASE_VALID if timings.phase_valid else 0
                lib.kv_producer_frame_end_timed(self._p, t)
        self._in_frame = False

    def post_frame(self, serial: int, ftype: FrameType, rows: np.ndarray, width: int, height: int, **kw) -> None:
        if not self.begin_frame(serial, ftype, width, height, pitch=rows.shape[1], **kw):
            return
        self.write_rows(rows)
        self.end_frame()

    # ---- cursor ------------------------------------------------------------------------------

    def post_cursor(self, x: int, y: int, visible: bool = True, shape=None, position: bool = True,
                    timeout: float = 1.0, sdr_white_level: int = 0) -> None:
        """Post a pointer update. ``shape``: (CursorType, width, wire_height, pitch, hx, hy, bytes)."""
        ci = self._ci
        flags = (CursorFlags.POSITION if position else 0) | (CursorFlags.VISIBLE if visible else 0)
        ci.x, ci.y = x, y
        ci.sdr_white_level = sdr_white_level
        data = ffi.NULL
        if shape is not None:
            ctype, w, h, pitch, hx, hy, raw = shape
            flags |= CursorFlags.SHAPE
            ci.type, ci.width, ci.height, ci.pitch, ci.hx, ci.hy = int(ctype), w, h, pitch, hx, hy
            data = ffi.from_buffer(raw)
        ci.flags = int(flags)
        if self._interrupted.is_set() or not self.region_ok():
            return
        # One native call: a retry would take another shape block. The agent passes 50 ms.
        rc = lib.kv_producer_cursor_post(self._p, ci, data, int(timeout * 1000), self._err)
        check(rc, self._err)

    # ---- client messages -----------------------------------------------------------------------

    def next_message(self) -> bytes | None:
        """The next client->host message (acknowledged as handled), or None."""
        if self._lost:
            return None
        if lib.kv_producer_next_message(self._p, self._msg, self._msg_size):
            return bytes(ffi.buffer(self._msg, self._msg_size[0]))
        return None

    @property
    def discarded_messages(self) -> int:
        """LGMP 12: client messages dropped because no active subscriber sent them."""
        return int(lib.kv_producer_discarded_messages(self._p))

    def queue_stats(self, queue_id: int) -> dict[str, int]:
        st = ffi.new("struct kv_queue_stats *")
        lib.kv_producer_queue_stats(self._p, queue_id, st)
        return {k: int(getattr(st, k)) for k in ("position", "start", "count", "num_messages", "subs", "new_sub_count")}

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["CursorType", "HostDescription", "PROTOCOLS", "Producer", "stage_timings"]
