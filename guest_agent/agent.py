"""The guest agent's main loop: post frames at a steady rate, animate the cursor, answer the client."""

from __future__ import annotations

import logging
import os
import stat
import struct
import threading
import time
from dataclasses import dataclass

from kvmfr_client.config import exits
from kvmfr_client.core import errors
from kvmfr_client.core.formats import FrameType, row_bytes
from kvmfr_client.core.native import lib
from kvmfr_client.core.session import recommended_shm_size_for
from kvmfr_client.core.testpattern import PatternKind

from .options import parse_frame_size
from .producer import HostDescription, Producer
from .sources.synthetic import PatternSource

log = logging.getLogger(__name__)

SHM_MODE = 0o660   # the file the agent creates: owner and group (the VM's) may write, nobody else


@dataclass
class AgentOptions:
    """What the agent runs with; the defaults are the ``agent:*`` options' (guest_agent/options.py)."""

    shm: str
    source: str
    width: int
    height: int
    fps: float
    ftype: FrameType
    frames: int                   # stop after this many frames (0 = run until stopped)
    cursor: bool
    idle_without_clients: bool
    protocol: str = "b7"          # b7 or master (guest_agent.producer.PROTOCOLS)

    @classmethod
    def from_config(cls, cfg) -> "AgentOptions":
        """From resolved options (:func:`kvmfr_client.config.load`) holding the ``agent:*`` ones."""
        width, height = cfg["agent:size"]
        return cls(shm=cfg["agent:shmFile"], source=cfg["agent:source"], width=width, height=height,
                   fps=cfg["agent:fps"], ftype=FrameType[cfg["agent:format"]], frames=cfg["agent:frames"],
                   cursor=cfg["agent:cursor"], idle_without_clients=not cfg["agent:always"],
                   protocol=cfg["agent:protocol"])


class AgentError(Exception):
    """The agent cannot start; the message says what is wrong and what to do, in one line."""


class ShmPathError(AgentError):
    """``agent:shmFile`` names something the agent cannot write frames into."""


def _describe_kind(mode: int) -> str | None:
    """What a non-file, non-device path is, in words (None: a regular file or a character device)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode):
        return "a block device"
    return None


def _mib(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size} bytes"


def check_shm_path(path: str, need: int = 0, frames: str = "") -> None:
    """Say in the user's words why ``path`` cannot hold our shared memory, before the native producer
    refuses it with an errno. (Only for the message: the producer's own open is what is relied on.)
    ``need``: the size the agent's ``frames`` (e.g. "1920x1080") need, named when the file is smaller."""
    hint = "give --shm a file such as /dev/shm/looking-glass, or a /dev/kvmfrN device"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ShmPathError(f"cannot create {path}: the folder {parent} does not exist; create it or "
                               f"{hint}") from None
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ShmPathError(f"cannot create {path}: this user may not create files in {parent}; {hint}") from None
        return
    except OSError as exc:
        raise ShmPathError(f"cannot use {path}: {exc.strerror}; {hint}") from None
    kind = _describe_kind(st.st_mode)
    if kind is not None:
        raise ShmPathError(f"{path} is {kind}, not a shared-memory file; {hint}")
    try:   # access() says yes to root everywhere; opening it is the real question (no FIFO gets here)
        os.close(os.open(path, os.O_RDWR | os.O_CLOEXEC))
    except PermissionError:
        if need and stat.S_ISREG(st.st_mode) and st.st_size < need:
            raise ShmPathError(f"{path} is {_mib(st.st_size)} and not writable by this user, so the agent cannot "
                               f"size it to the {_mib(need)} {frames} frames need: make it {_mib(need)} and "
                               f"writable by this user (the file's group is gid {st.st_gid}), or {hint}") from None
        raise ShmPathError(f"{path} is not writable by this user: add the user to the file's group "
                           f"(gid {st.st_gid}) or {hint}") from None
    except OSError as exc:
        raise ShmPathError(f"cannot use {path}: {exc.strerror}; {hint}") from None


def ensure_shm(path: str, width: int, height: int, ftype: FrameType) -> int:
    """Create the file when missing, mode 0660 whatever the umask (the guest's frames are nobody else's to
    write); returns the size the producer must give it (B7 sizing rule; 0 = it existed: see open_producer)."""
    size = recommended_shm_size_for(width, height, ftype)
    check_shm_path(path, size, f"{width}x{height}")
    if os.path.exists(path):
        return 0
    log.info("creating %s (%s, the recommended size for %dx%d, mode 0660)", path, _mib(size), width, height)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, SHM_MODE)
    except FileExistsError:
        return 0   # created by someone else meanwhile: theirs, left as it is
    except OSError as exc:
        raise ShmPathError(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, SHM_MODE)   # the umask may have taken group bits away
    finally:
        os.close(fd)
    return size


def open_producer(path: str, width: int, height: int, ftype: FrameType, host: HostDescription) -> Producer:
    """The producer on ``path``, created with the B7 size when missing. An existing regular file too small
    to hold an LGMP session at all (0 bytes, as tmpfiles.d creates it, or a few KiB) is sized like a new
    one: nobody can be using it (QEMU sizes the file it maps itself), and the agent is the producer. A file
    that holds a session is never resized, even when whole frames do not fit: QEMU may have it mapped at
    that size (the viewer then asks for the size the frames need). What cannot be sized (a device, a file
    that refuses to grow) is one line naming the file and the size the frames need."""
    need = recommended_shm_size_for(width, height, ftype)
    frames = f"{width}x{height}"
    create = ensure_shm(path, width, height, ftype)
    try:
        return Producer(path, create_size=create, host=host)
    except errors.ShmTooSmall as exc:
        log.debug("producer refused %s as it is: %s", path, exc.detail)
        if create:
            raise
        try:
            st = os.stat(path)
        except OSError:
            raise exc from None
        if not stat.S_ISREG(st.st_mode):
            raise ShmPathError(f"{path} is a device of {_mib(st.st_size if st.st_size else exc.value)}, too small "
                               f"for an LGMP session; {frames} frames need {_mib(need)}: give the device that "
                               f"size (kvmfr's static_size_mb={need >> 20}) or lower --size") from None
    was = st.st_size
    log.info("sizing %s to %s, the recommended size for %s frames (it was %s, too small for an LGMP session)",
             path, _mib(need), frames, _mib(was))
    try:
        return Producer(path, create_size=need, host=host)
    except errors.ShmError as exc:
        log.debug("cannot size %s: %s", path, exc.detail)
        raise ShmPathError(f"{path} is {_mib(was)} and cannot be resized: {frames} frames need {_mib(need)}; "
                           f"make it that size (the VM's ivshmem size, or the size in its tmpfiles.d rule) or "
                           f"give --shm a file the agent may resize") from None


def make_source(opts: AgentOptions):
    if opts.source in ("testpattern", "moving"):
        return PatternSource(opts.width, opts.height, opts.ftype, PatternKind.MOVING)
    if opts.source == "damage":
        return PatternSource(opts.width, opts.height, opts.ftype, PatternKind.DAMAGE)
    if opts.source == "prerendered":
        return PatternSource(opts.width, opts.height, opts.ftype, PatternKind.DAMAGE, prerendered=True)
    if opts.source == "x11":
        from .sources.x11 import X11Source, X11Unavailable
        try:
            source = X11Source()
        except X11Unavailable as exc:
            raise AgentError(str(exc)) from None
        opts.width, opts.height = source.width, source.height
        return source
    raise ValueError(f"unknown source {opts.source!r} (testpattern, damage, prerendered, x11)")


class Agent:
    def __init__(self, opts: AgentOptions):
        self.opts = opts
        self.source = make_source(opts)
        features = lib.KVMFR_FEATURE_SETCURSORPOS
        if opts.protocol == "master":
            features |= lib.KVMFR_FEATURE_WINDOWSIZE   # KVMFR 34: the client's window sets our resolution
        host = HostDescription(hostver="kvmfr-agent 0.1", capture=self.source.capture_name, features=features,
                               protocol=opts.protocol)
        self.producer = open_producer(opts.shm, opts.width, opts.height, opts.ftype, host)
        self.stop_event = threading.Event()
        self.frames_posted = 0
        self.serial = 0

    def _handle_messages(self) -> None:
        while (msg := self.producer.next_message()) is not None:
            if len(msg) >= 12:
                mtype, x, y = struct.unpack_from("<Iii", msg)
                if mtype == lib.KVMFR_MESSAGE_SETCURSORPOS:
                    self.source.warp(x, y)
                    log.info("client moved the cursor to %d,%d", x, y)
                elif mtype == lib.KVMFR_MESSAGE_WINDOWSIZE and self.opts.protocol == "master":
                    self._window_size(*struct.unpack_from("<II", msg, 4))

    def _window_size(self, width: int, height: int) -> None:
        """KVMFR 34's window-size request: follow it when it is sane and fits, else say why once."""
        try:
            parse_frame_size(f"{width}x{height}")
        except ValueError as exc:
            log.warning("client asked for a %dx%d display; ignored: %s", width, height, exc)
            return
        need = row_bytes(self.opts.ftype, width) * height
        if need > self.producer.max_frame_size:
            log.warning("client asked for a %dx%d display; ignored: its frames need %d bytes, the shared memory "
                        "holds %d a frame", width, height, need, self.producer.max_frame_size)
            return
        if not self.source.resize(width, height):
            return
        self.opts.width, self.opts.height = width, height
        log.info("client asked for a %dx%d display: frames are now that size", width, height)

    def _post_cursor(self, serial: int) -> None:
        update = self.source.cursor_update(serial)
        if update is None:
            return
        x, y, visible, shape = update
        try:
            self.producer.post_cursor(x, y, visible=visible, shape=shape, timeout=0.05)
        except errors.QueueError:
            pass   # the pointer queue is full: the client is gone or slow; positions are not precious

    def run(self) -> int:
        opts = self.opts
        period = 1.0 / opts.fps
        next_t = time.monotonic()
        while not self.stop_event.is_set():
            self._handle_messages()
            if opts.idle_without_clients and self.producer.subscribers(lib.LGMP_Q_FRAME) == 0:
                # As B7: no capture while nobody watches. New subscribers get the last frame re-posted.
                self.stop_event.wait(0.01)
                next_t = time.monotonic()
                continue
            self.serial += 1
            try:
                self.source.post(self.producer, self.serial)
            except errors.KvmfrTimeout:
                # Not posted: the serial stays free, so clients see no gap that was never a frame.
                log.warning("frame %d: clients did not finish frames in time", self.serial)
                self.serial -= 1
                continue
            self.frames_posted += 1
            if opts.cursor:
                self._post_cursor(self.serial)
            if opts.frames and self.frames_posted >= opts.frames:
                break
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)
            elif delay < -period:
                next_t = time.monotonic()   # fell behind: don't try to catch up with a burst
        return 0

    def close(self) -> None:
        self.producer.close()
        if hasattr(self.source, "close"):
            self.source.close()


def run_agent(opts: AgentOptions) -> int:
    agent = Agent(opts)

    def stop(_signum: int) -> None:   # SIGINT / SIGTERM: a clean stop, exit status 0
        agent.stop_event.set()
        agent.producer.interrupt()   # a frame wait in progress gives up within one wait slice

    with exits.on_stop_signals(stop):
        try:
            return agent.run()
        finally:
            agent.close()
