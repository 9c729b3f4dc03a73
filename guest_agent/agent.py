"""The guest agent's main loop: post frames at a steady rate, animate the cursor, answer the client."""

from __future__ import annotations

import logging
import os
import signal
import struct
import threading
import time
from dataclasses import dataclass

from kvmfr_client.core import errors
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.native import lib
from kvmfr_client.core.session import recommended_shm_size_for
from kvmfr_client.core.testpattern import PatternKind

from .producer import HostDescription, Producer
from .sources.synthetic import PatternSource

log = logging.getLogger(__name__)


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

    @classmethod
    def from_config(cls, cfg) -> "AgentOptions":
        """From resolved options (:func:`kvmfr_client.config.load`) holding the ``agent:*`` ones."""
        width, height = cfg["agent:size"]
        return cls(shm=cfg["agent:shmFile"], source=cfg["agent:source"], width=width, height=height,
                   fps=cfg["agent:fps"], ftype=FrameType[cfg["agent:format"]], frames=cfg["agent:frames"],
                   cursor=cfg["agent:cursor"], idle_without_clients=not cfg["agent:always"])


def ensure_shm(path: str, width: int, height: int, ftype: FrameType) -> int:
    """Create and size the file when missing (B7 sizing rule); returns the size to create with (0 = exists)."""
    if os.path.exists(path):
        return 0
    size = recommended_shm_size_for(width, height, ftype)
    log.info("creating %s (%d MiB, the recommended size for %dx%d)", path, size >> 20, width, height)
    return size


def make_source(opts: AgentOptions):
    if opts.source in ("testpattern", "moving"):
        return PatternSource(opts.width, opts.height, opts.ftype, PatternKind.MOVING)
    if opts.source == "damage":
        return PatternSource(opts.width, opts.height, opts.ftype, PatternKind.DAMAGE)
    if opts.source == "x11":
        from .sources.x11 import X11Source
        source = X11Source()
        opts.width, opts.height = source.width, source.height
        return source
    raise ValueError(f"unknown source {opts.source!r} (testpattern, damage, x11)")


class Agent:
    def __init__(self, opts: AgentOptions):
        self.opts = opts
        self.source = make_source(opts)
        create = ensure_shm(opts.shm, opts.width, opts.height, opts.ftype)
        host = HostDescription(hostver="kvmfr-agent 0.1", capture=self.source.capture_name,
                               features=lib.KVMFR_FEATURE_SETCURSORPOS)
        self.producer = Producer(opts.shm, create_size=create, host=host)
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

    def stop(signum, frame):
        agent.stop_event.set()

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return agent.run()
    finally:
        agent.close()
        for s, h in old.items():
            signal.signal(s, h)
