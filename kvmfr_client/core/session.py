"""A client session on a Looking Glass B7 shared-memory region: the Python face of the native reader.

    import kvmfr_client
    with kvmfr_client.open("/dev/shm/looking-glass", wait=5) as s:
        frame = s.next_frame(timeout=0.1)      # numpy rows + metadata, or None
        cursor = s.next_cursor()               # CursorEvent or None

The session connects lazily and reconnects by itself: a host that is not running yet, restarts,
stalls, or writes bad data never raises out of ``next_frame``/``next_cursor``; the state and the
reason are in :attr:`Session.state` / :attr:`Session.status_message`, and the refused value in
:attr:`Session.last_error`. Frames and cursor may be read from two threads (one each).

A Looking Glass master host (LGMP 12) that finds a client more than a second late on one queue drops it
from every queue (a B7 host only from that queue). So pointer messages nobody reads are not left to time
out: when ``next_cursor`` has not been called for a quarter of a second, ``next_frame`` finishes them
itself and keeps what they said (position, visibility, the newest shape) for the next ``next_cursor``,
which returns it as one event.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import stat
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import errors
from .native import check, cstr, ffi, lib, new_error, to_exception
from .cursor import CursorEvent, CursorFlags, CursorShape, CursorType
from .formats import FrameFlags, FrameType, Rotation

log = logging.getLogger(__name__)

RETRY_WAITING_S = 0.1      # host not running / not alive yet
RETRY_INCOMPATIBLE_S = 1.0
RETRY_BAD_DATA_S = 1.0
CONNECT_DELAY_S = 0.2      # as B7: give a running host time to move its heartbeat
CURSOR_POLL_US = 1000      # cursor updates matter at display rate, not at the frame reader's 250 us
CURSOR_UNREAD_NS = 250_000_000   # pointer messages unread this long are finished by the frame reader


# ---- is the path a shared-memory file at all? ----------------------------------------------------

# The size a file needs, said in the too-small message: the B7 rule for a 1080p SDR desktop.
TYPICAL_WIDTH, TYPICAL_HEIGHT = 1920, 1080
_WHAT_TO_GIVE = "give the IVSHMEM file (for example /dev/shm/looking-glass) or a kvmfr device (/dev/kvmfr0)"
_MEMORY_DEVICES = {(1, 3): "/dev/null", (1, 5): "/dev/zero", (1, 7): "/dev/full", (1, 8): "/dev/random",
                   (1, 9): "/dev/urandom", (1, 1): "/dev/mem", (1, 11): "/dev/kmsg"}


def check_shm_file(path: str) -> os.stat_result | None:
    """Stat ``path`` without opening it (a FIFO would block an open): None when it does not exist
    (yet), the stat result when it may be a shared-memory file or a kvmfr device, and
    :class:`errors.ShmNotUsable` with a one-line reason when it can never be one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise errors.ShmNotUsable(f"{path}: a part of that path is a file, not a folder; {_WHAT_TO_GIVE}",
                                  field="path", value=errno.ENOTDIR) from None
    except PermissionError:
        raise errors.ShmNotUsable(f"cannot reach {path}: permission denied on a folder of that path",
                                  field="path", value=errno.EACCES) from None
    except OSError as exc:
        raise errors.ShmNotUsable(f"cannot use {path}: {exc.strerror}", field="path", value=exc.errno or 0) from None
    mode = st.st_mode
    real = os.path.realpath(path)
    if stat.S_ISDIR(mode):
        raise errors.ShmNotUsable(f"{path} is a folder, not a shared-memory file; {_WHAT_TO_GIVE}", field="path")
    if stat.S_ISFIFO(mode):
        raise errors.ShmNotUsable(f"{path} is a FIFO (named pipe), not a shared-memory file; {_WHAT_TO_GIVE}",
                                  field="path")
    if stat.S_ISSOCK(mode):
        raise errors.ShmNotUsable(f"{path} is a socket, not a shared-memory file; {_WHAT_TO_GIVE}", field="path")
    if stat.S_ISBLK(mode):
        raise errors.ShmNotUsable(f"{path} is a block device (a disk), not a shared-memory file; {_WHAT_TO_GIVE}",
                                  field="path")
    if stat.S_ISCHR(mode):
        dev = (os.major(st.st_rdev), os.minor(st.st_rdev))
        if dev in _MEMORY_DEVICES:
            raise errors.ShmNotUsable(f"{path} is {_MEMORY_DEVICES[dev]}, which holds no shared memory; "
                                      f"{_WHAT_TO_GIVE}", field="path")
        return st   # maybe a kvmfr device: the native side asks it for its size
    if real.startswith(("/proc/", "/sys/")) or real in ("/proc", "/sys"):
        raise errors.ShmNotUsable(f"{path} is a kernel file under /{real.split('/')[1]}, not shared memory; "
                                  f"{_WHAT_TO_GIVE}", field="path")
    return st


def too_small_message(path: str, size: int) -> str:
    """What to say while waiting for a file too small to hold even the LGMP header."""
    need = recommended_shm_size(TYPICAL_WIDTH, TYPICAL_HEIGHT)
    return (f"waiting for {path} to be sized: it is {size} bytes, and a {TYPICAL_WIDTH}x{TYPICAL_HEIGHT} desktop "
            f"needs {need >> 20} MiB (the VM's ivshmem size, or the size in its tmpfiles.d rule, must be at least that)")


def open_error(path: str, err) -> errors.KvmfrError:
    """A failed ``kv_*_open`` as the exception a user reads: the errno goes to ``value``, not the text."""
    code, value = int(err.code), int(err.value)
    if code == lib.KV_ERR_MAP and cstr(err.field) == "path" and value:
        if value in (errno.EACCES, errno.EPERM, errno.EROFS):
            message = (f"cannot open {path} for reading and writing: permission denied (add your user to the "
                       f"file's group, or fix the mode in its tmpfiles.d or udev rule)")
        elif value == errno.ENOTTY:
            message = f"{path} is a character device but not a kvmfr device; {_WHAT_TO_GIVE}"
        else:
            message = f"cannot open {path}: {os.strerror(value)}"
        return errors.ShmNotUsable(message, code=code, field="path", value=value, limit=int(err.limit))
    if code == lib.KV_ERR_SHM_TOO_SMALL:
        return errors.ShmTooSmall(too_small_message(path, value), code=code, field="shm.size", value=value,
                                  limit=int(err.limit))
    return to_exception(err)


def _lost_message(path: str, exc: errors.KvmfrError) -> str:
    if exc.value == lib.KV_LOST_REMOVED:
        return f"the shared memory file {path} was removed under the viewer; waiting for it to be created again"
    if exc.value == lib.KV_LOST_SHRANK:
        return (f"the shared memory file {path} shrank under the viewer (to {exc.limit} bytes); "
                f"waiting for valid memory again")
    return f"the shared memory under {path} went away under the viewer; waiting for valid memory again"


class SessionState(enum.Enum):
    WAITING = "waiting for the host"
    INCOMPATIBLE = "host speaks another version"
    CONNECTED = "connected"
    LOST = "host lost, reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True)
class HostInfo:
    session_id: int
    hostver: str
    features: int
    capture: str
    os: int | None
    os_name: str
    cpus: int
    cores: int
    sockets: int
    model: str
    uuid: bytes
    lgmp_version: int = lib.LGMP_PROTOCOL_VERSION
    kvmfr_version: int = lib.KVMFR_VERSION

    @property
    def can_set_cursor_pos(self) -> bool:
        return bool(self.features & lib.KVMFR_FEATURE_SETCURSORPOS)

    @property
    def can_set_window_size(self) -> bool:
        """KVMFR 34 hosts that follow the client's window size (Looking Glass's ``win:setGuestRes``)."""
        return self.kvmfr_version == lib.KVMFR34_VERSION and bool(self.features & lib.KVMFR_FEATURE_WINDOWSIZE)

    @property
    def protocol(self) -> dict[str, int]:
        """What the headless reader's JSON reports: ``{"lgmp": 6|12, "kvmfr": 20|34}``."""
        return {"lgmp": self.lgmp_version, "kvmfr": self.kvmfr_version}

    @property
    def protocol_name(self) -> str:
        """The Looking Glass release that speaks this protocol: "B7" or "master"."""
        return "master" if self.lgmp_version == lib.LGMP12_PROTOCOL_VERSION else "B7"

    @property
    def protocol_label(self) -> str:
        """E.g. "Looking Glass master: LGMP 12 / KVMFR 34"."""
        return f"Looking Glass {self.protocol_name}: LGMP {self.lgmp_version} / KVMFR {self.kvmfr_version}"

    def describe(self) -> str:
        parts = [f"Looking Glass host {self.hostver or '?'}"]
        if self.capture:
            parts.append(f"capture {self.capture}")
        if self.os_name:
            parts.append(self.os_name)
        return ", ".join(parts)

    @classmethod
    def from_native(cls, info) -> "HostInfo":
        return cls(
            session_id=int(info.session_id), hostver=cstr(info.hostver), features=int(info.features),
            capture=cstr(info.capture), os=None if info.os < 0 else int(info.os), os_name=cstr(info.os_name),
            cpus=int(info.cpus), cores=int(info.cores), sockets=int(info.sockets), model=cstr(info.model),
            uuid=bytes(ffi.buffer(info.uuid, 16)), lgmp_version=int(info.lgmp_version),
            kvmfr_version=int(info.kvmfr_version))


@dataclass(frozen=True)
class HostTimings:
    """The host's own durations for one frame (KVMFR 34), in nanoseconds; only timings the host
    marked valid for this very frame become one of these."""

    capture_ns: int
    post_process_ns: int
    copy_ns: int
    ready_ns: int
    hold_ns: int
    ready_lead_ns: int
    phase_valid: bool = False

    STAGES = ("capture", "post_process", "copy", "ready", "hold", "ready_lead")

    def as_ms(self) -> dict[str, float]:
        return {name: getattr(self, name + "_ns") / 1e6 for name in self.STAGES}

    @classmethod
    def from_native(cls, fi) -> "HostTimings | None":
        if not fi.timing_valid:
            return None
        return cls(capture_ns=int(fi.host_capture_ns), post_process_ns=int(fi.host_post_process_ns),
                   copy_ns=int(fi.host_copy_ns), ready_ns=int(fi.host_ready_ns), hold_ns=int(fi.host_hold_ns),
                   ready_lead_ns=int(fi.host_ready_lead_ns),
                   phase_valid=bool(fi.timing_flags & lib.KVMFR_FRAME_TIMING_PHASE_VALID))


@dataclass(frozen=True)
class HdrMetadata:
    """HDR static metadata of a KVMFR 34 frame (SMPTE ST 2086 + CTA-861.3), in natural units."""

    primaries: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]   # CIE xy of R, G, B
    white_point: tuple[float, float]
    max_luminance: float        # nits
    min_luminance: float        # nits
    max_cll: int                # nits
    max_fall: int               # nits

    @classmethod
    def from_native(cls, fi) -> "HdrMetadata | None":
        if not fi.flags & lib.FRAME_FLAG_HDR_METADATA:
            return None
        p = [int(v) * 0.00002 for v in fi.hdr_primaries[0:6]]
        return cls(primaries=((p[0], p[1]), (p[2], p[3]), (p[4], p[5])),
                   white_point=(int(fi.hdr_white_point[0]) * 0.00002, int(fi.hdr_white_point[1]) * 0.00002),
                   max_luminance=float(fi.hdr_max_luminance), min_luminance=int(fi.hdr_min_luminance) * 0.0001,
                   max_cll=int(fi.hdr_max_cll), max_fall=int(fi.hdr_max_fall))


@dataclass
class Frame:
    """One frame as copied out of shared memory. ``pixels`` holds the stored rows (data_height, pitch)."""

    serial: int
    type: FrameType
    format_ver: int
    width: int
    height: int
    screen_width: int
    screen_height: int
    data_width: int
    data_height: int
    pitch: int
    stride: int
    rotation: Rotation
    flags: FrameFlags
    damage: tuple[tuple[int, int, int, int], ...]
    pixels: np.ndarray = field(repr=False)
    damage_only: bool = False
    t_seen_ns: int = 0
    t_copy_start_ns: int = 0
    t_copy_end_ns: int = 0
    sdr_white_level: int = 0                 # KVMFR 34: nits of SDR white (0: not given, B7)
    host_timings: HostTimings | None = None  # KVMFR 34: the host's stage durations, when valid
    hdr_metadata: HdrMetadata | None = None  # KVMFR 34: with FrameFlags.HDR_METADATA

    @property
    def truncated(self) -> bool:
        return bool(self.flags & FrameFlags.TRUNCATED)

    @classmethod
    def from_native(cls, fi, pixels: np.ndarray, damage_only: bool = False) -> "Frame":
        """Build from a validated ``struct kv_frame_info`` and the rows copied for it."""
        return cls(
            serial=int(fi.serial), type=FrameType(fi.type), format_ver=int(fi.format_ver),
            width=int(fi.frame_width), height=int(fi.frame_height),
            screen_width=int(fi.screen_width), screen_height=int(fi.screen_height),
            data_width=int(fi.data_width), data_height=int(fi.data_height), pitch=int(fi.pitch),
            stride=int(fi.stride), rotation=Rotation(fi.rotation), flags=FrameFlags(fi.flags),
            damage=tuple((int(r.x), int(r.y), int(r.width), int(r.height)) for r in fi.damage[0:fi.damage_count]),
            pixels=pixels, damage_only=damage_only, t_seen_ns=int(fi.t_seen_ns),
            t_copy_start_ns=int(fi.t_copy_start_ns), t_copy_end_ns=int(fi.t_copy_end_ns),
            sdr_white_level=int(fi.sdr_white_level), host_timings=HostTimings.from_native(fi),
            hdr_metadata=HdrMetadata.from_native(fi))


def recommended_shm_size(width: int, height: int, bytes_per_pixel: int = 4) -> int:
    """The B7 sizing rule: 2 frames + 10 MiB, rounded up to a power of two (bytes)."""
    return int(lib.kv_recommended_shm_size(width, height, bytes_per_pixel))


def recommended_shm_size_for(width: int, height: int, ftype: FrameType) -> int:
    """:func:`recommended_shm_size` for frames of ``ftype``: the B7 host sizes at 8 bytes a pixel for
    RGBA16F and 4 for every other kind (the packed 24-bit kinds included)."""
    return recommended_shm_size(width, height, 8 if ftype == FrameType.RGBA16F else 4)


class _Gate:
    """Many native calls at once (frame and cursor threads), or one reconnect alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._exclusive = False

    def enter(self) -> None:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._active += 1

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def enter_exclusive(self) -> None:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._active:
                self._cond.wait()

    def leave_exclusive(self) -> None:
        with self._cond:
            self._exclusive = False
            self._cond.notify_all()


class Session:
    """See the module docstring. Create with :func:`kvmfr_client.open`."""

    def __init__(self, path: str, poll_us: int = 250):
        self.path = str(path)
        self._c = ffi.gc(lib.kv_client_new(), lib.kv_client_free)
        if self._c == ffi.NULL:
            raise MemoryError("kv_client_new")
        lib.kv_client_set_poll_us(self._c, poll_us)
        self.shm_size = 0
        self._mapped = False
        self._gate = _Gate()
        self._reconnect_lock = threading.Lock()
        self._next_attempt = time.monotonic() + CONNECT_DELAY_S
        self._ever_connected = False
        self._refusal: errors.KvmfrError | None = None   # why the last connection attempt was refused
        self._shape_buf = ffi.new("uint8_t[]", lib.KVMFR_CURSOR_SHAPE_MAX)
        self._cursor_visible = False
        self._cursor_lock = threading.Lock()     # held by whoever reads the pointer queue
        self._cursor_read_ns = 0                 # when next_cursor last started or returned
        self._unread_cursor: CursorEvent | None = None   # what the frame reader finished for it
        self._last_serial: int | None = None
        self._frame_err = new_error()
        self._cursor_err = new_error()
        self._fi = ffi.new("struct kv_frame_info *")
        self._ci = ffi.new("struct kv_cursor_info *")
        self._ready = ffi.new("uint32_t *")
        self._lost_size = ffi.new("uint64_t *")
        self.state = SessionState.WAITING
        self.status_message = SessionState.WAITING.value
        self.host: HostInfo | None = None
        self.last_error: errors.KvmfrError | None = None
        self.error_counts: Counter[str] = Counter()
        self.session_restarts = 0
        self.frames_received = 0
        self.frames_skipped_repost = 0
        self._map()   # raises for anything but "not there yet": a VM not started yet is waited for

    # ---- connection ------------------------------------------------------------------------

    def _ensure_connected(self) -> bool:
        if self.state is SessionState.CONNECTED:
            return True
        if self.state is SessionState.CLOSED or time.monotonic() < self._next_attempt:
            return False
        with self._reconnect_lock:
            if self.state is SessionState.CONNECTED:
                return True
            self._gate.enter_exclusive()
            try:
                self._connect()
            finally:
                self._gate.leave_exclusive()
        return self.state is SessionState.CONNECTED

    def _map(self) -> bool:
        """Map the file. False (with the reason in status_message) while it is missing or too small,
        which are waited on; ShmNotUsable when it can never be shared memory."""
        st = check_shm_file(self.path)
        if st is None:
            self.status_message = f"waiting for {self.path} to exist (is the VM running?)"
            return False
        if stat.S_ISREG(st.st_mode) and st.st_size < lib.LGMP_HEADER_SIZE:
            self.status_message = too_small_message(self.path, st.st_size)
            return False
        err = new_error()
        rc = lib.kv_client_open(self._c, self.path.encode(), err)
        if rc == lib.KV_ERR_MAP and err.value == errno.ENOENT and ffi.string(err.field) == b"path":
            self.status_message = f"waiting for {self.path} to exist (is the VM running?)"
            return False
        if rc == lib.KV_ERR_SHM_TOO_SMALL:
            self.status_message = too_small_message(self.path, int(err.value))
            return False
        if rc != lib.LGMP_OK:
            raise open_error(self.path, err)
        lib.kv_client_init(self._c)
        self.shm_size = int(lib.kv_client_shm_size(self._c))
        self._mapped = True
        return True

    def _connect(self) -> None:
        if self._mapped and self._shm_lost() is not None:
            self._unmap()
        if not self._mapped:
            try:
                mapped = self._map()
            except errors.ShmNotUsable as exc:
                # It was usable when the session opened (else that raised): something replaced it.
                self._set_state(SessionState.WAITING, f"{exc}; waiting for that to change", exc, RETRY_BAD_DATA_S)
                return
            if not mapped:
                state = SessionState.LOST if self._ever_connected else SessionState.WAITING
                self._set_state(state, self.status_message, None, RETRY_WAITING_S)
                return
        info = ffi.new("struct kv_host_info *")
        err = new_error()
        try:
            check(lib.kv_client_session_init(self._c, info, err), err)
            for queue in (lib.LGMP_Q_FRAME, lib.LGMP_Q_POINTER):
                check(lib.kv_client_subscribe(self._c, queue, err), err)
        except errors.IncompatibleHost as exc:
            self._refusal = exc
            self._set_state(SessionState.INCOMPATIBLE, str(exc.message), exc, RETRY_INCOMPATIBLE_S)
            return
        except errors.HostNotRunning as exc:
            self._refusal = None
            state = SessionState.LOST if self._ever_connected else SessionState.WAITING
            self._set_state(state, f"{state.value}: {exc.message}", None, RETRY_WAITING_S)
            return
        except errors.KvmfrError as exc:
            self._refusal = exc
            self._record_error(exc)
            self._unsubscribe_all()
            self._set_state(SessionState.WAITING, f"host data refused: {exc}", exc, RETRY_BAD_DATA_S)
            return
        self._refusal = None
        self.host = HostInfo.from_native(info)
        if self._ever_connected:
            self.session_restarts += 1
        self._ever_connected = True
        self._last_serial = None
        self._unread_cursor = None   # the new host re-posts its cursor to a new subscriber
        self._set_state(SessionState.CONNECTED, f"connected to {self.host.describe()} ({self.host.protocol_label})",
                        None, 0)
        log.info("connected: %s (session %d)", self.host.describe(), self.host.session_id)

    def _set_state(self, state: SessionState, message: str, exc, retry_s: float) -> None:
        if state is not self.state or message != self.status_message:
            log.log(logging.WARNING if exc else logging.INFO, "%s", message)
        self.state = state
        self.status_message = message
        if exc is not None:
            self.last_error = exc
        self._next_attempt = time.monotonic() + retry_s

    def _shm_lost(self) -> errors.ShmLost | None:
        """The cheap check (a flag and an fstat): did the file shrink or vanish under the mapping?"""
        size = self._lost_size
        why = int(lib.kv_client_shm_lost(self._c, size))
        if not why:
            return None
        exc = errors.ShmLost("", code=lib.KV_ERR_SHM_LOST, field="shm.size", value=why, limit=int(size[0]))
        exc.message = _lost_message(self.path, exc)
        return exc

    def _unmap(self) -> None:
        """Drop the mapping (caller holds the gate exclusively or is the only user)."""
        lib.kv_client_close(self._c)
        self._mapped = False
        self.shm_size = 0

    def _unsubscribe_all(self) -> None:
        for queue in (lib.LGMP_Q_FRAME, lib.LGMP_Q_POINTER):
            lib.kv_client_unsubscribe(self._c, queue)

    def _drop(self, exc: errors.KvmfrError) -> None:
        """The session is gone or unusable: unsubscribe and go back to waiting for a valid host."""
        with self._reconnect_lock:
            if self.state is not SessionState.CONNECTED:
                return
            self._gate.enter_exclusive()
            try:
                if isinstance(exc, errors.ShmLost):
                    # Said once (by _set_state): the reconnect attempts that follow only wait for the file.
                    self._unmap()
                    self.error_counts[type(exc).__name__] += 1
                    log.debug("%s", exc.detail)
                    self._set_state(SessionState.LOST, exc.message, exc, RETRY_WAITING_S)
                    return
                self._unsubscribe_all()
                if not isinstance(exc, errors.SessionLost):
                    self._record_error(exc)
                self._set_state(SessionState.LOST, f"{SessionState.LOST.value}: {exc.message}", exc, 0)
            finally:
                self._gate.leave_exclusive()

    def _record_error(self, exc: errors.KvmfrError) -> None:
        self.last_error = exc
        self.error_counts[type(exc).__name__] += 1
        log.warning("%s", exc)
        log.debug("%s", exc.detail)

    def errors_by_kind(self) -> dict[str, int]:
        """How many errors of each kind (the KvmfrError class name) this session has met: refused frames and
        cursor messages, bad hosts, lost mappings. A copy, safe to take from any thread."""
        return dict(self.error_counts)   # one C-level copy under the GIL, whatever the reading threads do

    def _sleep_until_retry(self, timeout: float) -> None:
        delay = min(timeout, max(0.0, self._next_attempt - time.monotonic()))
        if delay > 0:
            time.sleep(delay)

    # ---- frames ----------------------------------------------------------------------------

    def _guarded(self, timeout: float, call, skippable: type[errors.KvmfrError]):
        """Run one read on a connected session. A refused message (``skippable``) is logged and
        skipped; any other error drops the session, which then reconnects on a later call."""
        if not self._ensure_connected():
            self._sleep_until_retry(timeout)
            return None
        self._gate.enter()
        try:
            result = call()
            lost = self._shm_lost()   # what was read may be zeros if the file went away meanwhile
            if lost is None:
                return result
            drop = lost
        except skippable as exc:
            lost = self._shm_lost()
            if lost is None:
                self._record_error(exc)
                return None
            drop = lost
        except errors.KvmfrError as exc:
            drop = self._shm_lost() or exc
        finally:
            self._gate.leave()
        self._drop(drop)
        return None

    def next_frame(self, timeout: float = 0.1, out: np.ndarray | None = None, allow_damage: bool = False,
                   newest: bool = False) -> Frame | None:
        """The next new frame, or None after ``timeout`` seconds.

        ``out``: a writable C-contiguous-rows uint8 array to copy into (the viewer's own buffer);
        with ``allow_damage`` and a frame that directly follows the previous one, only its damage
        rectangles are copied, so ``out`` must still hold the previous frame. ``newest`` skips
        frames that queued up behind the newest one.
        """
        return self._guarded(timeout, lambda: self._next_frame(timeout, out, allow_damage, newest),
                             errors.FrameError)

    def _next_frame(self, timeout, out, allow_damage, newest) -> Frame | None:
        c, err, fi = self._c, self._frame_err, self._fi
        check(lib.kv_client_wait(c, lib.KV_READY_FRAME, int(timeout * 1000), 0, self._ready, err), err)
        if not self._ready[0]:
            return None
        if newest:
            check(lib.kv_client_frame_skip_to_newest(c, err), err)
        rc = lib.kv_client_frame_peek(c, fi, err)
        if rc == lib.LGMP_ERR_QUEUE_EMPTY:
            return None
        check(rc, err, frame=True)
        serial = int(fi.serial)
        if serial == self._last_serial:
            # A re-post of a frame we already have (sent for a new subscriber): nothing new.
            self.frames_skipped_repost += 1
            check(lib.kv_client_frame_done(c, err), err)
            return None
        rows, pitch = int(fi.data_height), int(fi.pitch)
        row_len = int(fi.row_len)
        keeps_previous = out is not None   # only the caller's own buffer can hold the previous frame
        if out is None:
            out = np.empty((rows, pitch), np.uint8)
        elif out.ndim != 2 or out.dtype != np.uint8 or out.shape[0] < rows or out.shape[1] < row_len \
                or out.strides[1] != 1 or not out.flags.writeable:
            lib.kv_client_frame_done(c, err)
            raise ValueError(f"out must be a writable uint8 array of at least {rows}x{row_len}")
        use_damage = bool(allow_damage and keeps_previous and fi.damage_count and self._last_serial is not None
                          and serial == (self._last_serial + 1) & 0xFFFFFFFF)
        dst_pitch = out.strides[0]
        dst_size = dst_pitch * (rows - 1) + row_len
        buf = ffi.from_buffer("uint8_t[]", out, require_writable=True)
        rc = lib.kv_client_frame_copy(c, fi, buf, dst_size, dst_pitch,
                                      lib.KV_COPY_DAMAGE if use_damage else lib.KV_COPY_FULL, err)
        check(rc, err, frame=True)
        self._last_serial = serial
        self.frames_received += 1
        self._finish_unread_cursor()
        return Frame.from_native(fi, out[:rows], use_damage)

    # ---- cursor ----------------------------------------------------------------------------

    def next_cursor(self, timeout: float = 0.0) -> CursorEvent | None:
        """The next pointer-queue message as a :class:`CursorEvent`, or None after ``timeout``."""
        with self._cursor_lock:
            self._cursor_read_ns = time.monotonic_ns()
            try:
                unread, self._unread_cursor = self._unread_cursor, None
                if unread is not None:
                    return unread
                return self._guarded(timeout, lambda: self._next_cursor(timeout), errors.CursorError)
            finally:
                self._cursor_read_ns = time.monotonic_ns()

    def _finish_unread_cursor(self) -> None:
        """Finish the pointer messages nobody has read for CURSOR_UNREAD_NS (see the module docstring),
        merged into one event for the next next_cursor. Called by the frame reader inside the gate."""
        if time.monotonic_ns() - self._cursor_read_ns < CURSOR_UNREAD_NS or not self._cursor_lock.acquire(False):
            return
        try:
            while (ev := self._read_cursor()) is not None:
                self._unread_cursor = ev.after(self._unread_cursor)
        except errors.CursorError as exc:
            self._record_error(exc)
        except errors.KvmfrError as exc:
            log.debug("finishing unread pointer messages: %s", exc.detail)   # the frame path sees it next
        finally:
            self._cursor_lock.release()

    def _next_cursor(self, timeout: float) -> CursorEvent | None:
        c, err = self._c, self._cursor_err
        check(lib.kv_client_wait(c, lib.KV_READY_CURSOR, int(timeout * 1000), CURSOR_POLL_US, self._ready, err), err)
        if not self._ready[0]:
            return None
        return self._read_cursor()

    def _read_cursor(self) -> CursorEvent | None:
        c, err, ci = self._c, self._cursor_err, self._ci
        rc = lib.kv_client_cursor_next(c, ci, self._shape_buf, lib.KVMFR_CURSOR_SHAPE_MAX, err)
        if rc == lib.LGMP_ERR_QUEUE_EMPTY:
            return None
        check(rc, err, cursor=True)
        flags = CursorFlags(ci.flags)
        shape = None
        if flags & CursorFlags.SHAPE:
            ctype = CursorType(ci.type)
            height = int(ci.height) // 2 if ctype == CursorType.MONOCHROME else int(ci.height)
            shape = CursorShape(type=ctype, width=int(ci.width), height=height, hx=int(ci.hx), hy=int(ci.hy),
                                pitch=int(ci.pitch), data=bytes(ffi.buffer(self._shape_buf, ci.shape_size)))
        # KVMFR 34 hosts say whether VISIBLE means anything (VISIBLE_VALID); B7's always does.
        if self.host is None or self.host.kvmfr_version != lib.KVMFR34_VERSION or flags & CursorFlags.VISIBLE_VALID:
            self._cursor_visible = bool(flags & CursorFlags.VISIBLE)
        return CursorEvent(flags=flags, x=int(ci.x), y=int(ci.y), visible=self._cursor_visible, shape=shape,
                           t_seen_ns=int(ci.t_seen_ns), sdr_white_level=int(ci.sdr_white_level))

    # ---- client -> host ----------------------------------------------------------------------

    def set_window_size(self, width: int, height: int) -> None:
        """Ask a KVMFR 34 host that advertises it (:attr:`HostInfo.can_set_window_size`) for a guest
        display of width x height; the new resolution then arrives like any host restart."""
        if not self._ensure_connected():
            raise errors.HostNotRunning(self.status_message)
        err = new_error()
        self._gate.enter()
        try:
            check(lib.kv_client_set_window_size(self._c, int(width), int(height), err), err)
        finally:
            self._gate.leave()

    def set_cursor_pos(self, x: int, y: int, timeout: float = 0.5) -> None:
        """Ask the host to move the guest pointer (hotspot) to x, y; waits for its acknowledgement."""
        if not self._ensure_connected():
            raise errors.HostNotRunning(self.status_message)
        err = new_error()
        self._gate.enter()
        try:
            check(lib.kv_client_set_cursor_pos(self._c, int(x), int(y), int(timeout * 1000), err), err)
        finally:
            self._gate.leave()

    # ---- inspection / lifecycle ----------------------------------------------------------------

    def wait_connected(self, timeout: float) -> HostInfo:
        """Block until connected; raise the reason (HostNotRunning, IncompatibleHost, ...) on timeout."""
        deadline = time.monotonic() + timeout
        while not self._ensure_connected():
            if time.monotonic() >= deadline:
                if self._refusal is not None:
                    raise self._refusal   # the host is there but was refused: say exactly why
                raise errors.HostNotRunning(self.status_message)
            self._sleep_until_retry(min(0.05, max(0.0, deadline - time.monotonic())))
        assert self.host is not None
        return self.host

    def queue_stats(self, queue_id: int) -> dict[str, int]:
        st = ffi.new("struct kv_queue_stats *")
        lib.kv_client_queue_stats(self._c, queue_id, st)
        return {k: int(getattr(st, k)) for k in ("position", "start", "count", "num_messages", "subs",
                                                 "new_sub_count", "slot")}

    def close(self) -> None:
        if self.state is SessionState.CLOSED:
            return
        with self._reconnect_lock:
            self._gate.enter_exclusive()
            try:
                if self.state is SessionState.CONNECTED and self._shm_lost() is None:
                    self._unsubscribe_all()
                if self._mapped:
                    self._unmap()
                self.state = SessionState.CLOSED
                self.status_message = SessionState.CLOSED.value
            finally:
                self._gate.leave_exclusive()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(path: str, wait: float | None = None, poll_us: int = 250) -> Session:  # noqa: A001 - API name
    """Open a session on the shared memory at ``path``; with ``wait``, block until connected."""
    session = Session(path, poll_us=poll_us)
    if wait is not None:
        try:
            session.wait_connected(wait)
        except BaseException:
            session.close()
            raise
    return session


__all__ = ["Frame", "HostInfo", "Session", "SessionState", "check_shm_file", "open", "open_error",
           "recommended_shm_size", "recommended_shm_size_for", "to_exception", "too_small_message"]
