"""Scream over IVSHMEM: a shared-memory ring of 20 ms chunks (``/dev/shm/scream-ivshmem``) -> jitter buffer.

There is no doorbell: thread ``audio-scream-ivshmem`` polls the header's write index, as Scream's own
receiver does, every target latency / 8 (bounded to 2-10 ms). Rules, from the Windows writer's behaviour:

* wait (10 ms polls) until the magic appears and the header describes a usable format;
* start at the current write index, so audio written before we came is skipped;
* more than 3 chunks behind -> jump to write index - 1 (catch up instead of playing old audio);
* the header's layout changing (writer re-initialised, new format) restarts from the new write index;
* a chunk is kept only if the header did not change and the writer did not lap us while we copied it.

Everything read from the file is copied first and then checked: a garbage header is a logged warning.
The header is copied once per poll (``RingHeader.unpack``) and checked against the mapping
(``RingHeader.check``: chunk size capped at ``scream_wire.MAX_CHUNK_SIZE``, the whole ring inside the
file); a chunk is sliced out of the mapping (a copy) and re-checked against a second copy of the header.

The file can shrink or vanish under the mapping (``truncate -s 0``, the VM's start script re-creating it).
Touching a page past the end of a shrunk file raises SIGBUS, which would kill the whole program; two
defences, because neither alone closes the gap:

* each poll compares the file's size (``fstat``) with the mapping and, every ``RECHECK_PATH`` seconds,
  the path's inode with the open file's (deleted and re-created), and drops the mapping when they
  differ; this catches every change that happened between two polls;
* a shrink *during* a copy (after the check) is caught by the native guard
  (``kvmfr_client.core.native.guard_buffer``): the SIGBUS turns the missing pages into zeros and sets
  ``guard.lost``, and the chunk copied in that poll is thrown away.

Either way the loss is reported once (``lost_mappings`` counts them), the mapping is dropped, and the
reader waits (``WAIT_FILE`` polls) for a file large enough for the header again, then resumes.
"""

from __future__ import annotations

import logging
import mmap
import os
import time

from kvmfr_client.audio import formats, scream_wire
from kvmfr_client.audio.formats import FormatError, PcmFormat
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.priority import raise_thread_priority
from kvmfr_client.audio.warnings import RateLimitedWarning
from kvmfr_client.audio.worker import Worker
from kvmfr_client.core import native
from kvmfr_client.core.errors import KvmfrError

log = logging.getLogger(__name__)

MAX_BEHIND = 3
MAGIC_POLL = 0.01
CHUNK_SECONDS = 0.02  # the Windows driver's chunk; the player's target must exceed it
WAIT_FILE = 0.1  # poll for a missing, too small or replaced file
RECHECK_PATH = 0.25  # how often the path is checked for a re-created file while the ring is idle


def _guard(mapping: mmap.mmap):
    """The native SIGBUS guard over ``mapping``; None (and a warning) when the process has used up the
    guard's slots, in which case only the per-poll size and inode checks protect the reader."""
    try:
        return native.guard_buffer(mapping)
    except KvmfrError as exc:
        log.warning("scream-ivshmem: %s; reading without the guard", exc)
        return None


class ScreamIvshmemSource(Worker):
    def __init__(self, buffer: JitterBuffer, path: str, poll: float = 0.0025):
        self.buffer = buffer
        self.path = path
        self.poll_interval = min(max(poll, 0.002), 0.01)
        self.chunks = 0
        self.skipped_chunks = 0  # jumped over to catch up
        self.bad_headers = 0
        self.torn_chunks = 0
        self.lost_mappings = 0  # the file shrank, vanished or was replaced under the mapping
        self._warn = RateLimitedWarning(log)
        super().__init__()
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self._map: mmap.mmap | None = None
        self._guard = None
        self._path_checked = 0.0
        self._waiting_since_loss = False
        # Ring-following state (see poll()).
        self._layout = None
        self._fmt: PcmFormat | None = None
        self._read_idx = 0

    thread_name = "audio-scream-ivshmem"

    def _close(self) -> None:
        self._unmap()

    # --- mapping ----------------------------------------------------------------------------------

    def _mapped_size(self) -> int:
        """The mapping's size, mapping the file when needed; 0 when it is unusable right now."""
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
                st = os.fstat(self._fd)
                self._ino = (st.st_dev, st.st_ino)
            size = os.fstat(self._fd).st_size
        except OSError as exc:
            self._unmap()
            self._waiting("open", "scream-ivshmem: cannot open %s (%s); waiting for it", self.path,
                          exc.strerror or exc)
            return 0
        if self._map is not None and len(self._map) != size:
            # Touching pages past a shrunk file's end would raise SIGBUS: drop the mapping first.
            self._lost(f"changed size from {len(self._map)} to {size} bytes")
            return 0
        if self._map is None:
            if size < scream_wire.IVSHMEM_HEADER.size:
                self._waiting("size", "scream-ivshmem: %s is %d bytes, too small for the %d-byte header;"
                              " waiting for the writer", self.path, size, scream_wire.IVSHMEM_HEADER.size)
                self._unmap()  # re-open next time: the writer may create a new file
                return 0
            self._map = mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
            self._guard = _guard(self._map)
            if self._waiting_since_loss:
                log.info("scream-ivshmem: %s is back (%d bytes); resuming", self.path, size)
                self._waiting_since_loss = False
        return size

    def _waiting(self, kind: str, msg: str, *args) -> None:
        if self._waiting_since_loss:
            log.debug(msg, *args)  # the loss was reported once already; this is what it looks like now
        else:
            self._warn.warn(kind, msg, *args)

    def _replaced(self) -> bool:
        """Whether the path now names another file than the one mapped (deleted, re-created)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._ino

    def _lost(self, how: str) -> None:
        """The mapping no longer matches the file: report once, drop it, wait for a valid file."""
        self.lost_mappings += 1
        self._waiting_since_loss = True
        log.warning("scream-ivshmem: %s %s under the reader; audio paused until it is valid again",
                    self.path, how)
        self._layout = None
        self._unmap()

    def _unmap(self) -> None:
        if self._guard is not None:
            self._guard.close()  # before the mapping goes: the guard holds its address range
            self._guard = None
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # --- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        raise_thread_priority()
        while not self._stop.is_set():
            size = self._mapped_size()
            if not size:
                self._stop.wait(WAIT_FILE)
                continue
            wait = self.poll(self._map, size)
            if self._guard is not None and self._guard.lost:
                self._lost("shrank")  # (what was copied in this poll came from zeroed pages: dropped)
                continue
            if wait:
                now = time.monotonic()
                if now - self._path_checked >= RECHECK_PATH:
                    self._path_checked = now
                    if self._replaced():
                        self._lost("was deleted or replaced")
                        continue
                self._stop.wait(wait)

    def poll(self, region, size: int) -> float:
        """Follow the ring one step on ``region`` (the mapping, or any buffer of ``size`` bytes): push the
        next chunk when there is one. Returns how long to wait before the next poll (0: poll again now).

        Nothing is raised for anything in the region; what is wrong is counted and logged (rate-limited).
        """
        header = scream_wire.RingHeader.unpack(region)
        try:
            new_fmt = header.check(size)
        except FormatError as exc:
            if header.magic == scream_wire.IVSHMEM_MAGIC:
                self.bad_headers += 1
                self._warn.warn("header", "scream-ivshmem: unusable header in %s: %s", self.path, exc)
            self._layout = None
            return MAGIC_POLL
        if header.layout_key() != self._layout:
            if self._fmt is not None and new_fmt != self._fmt:
                log.info("scream-ivshmem: format %s -> %s", self._fmt.describe(), new_fmt.describe())
            self._layout, self._fmt, self._read_idx = header.layout_key(), new_fmt, header.write_idx
            log.info("scream-ivshmem: %s, %d chunks of %d B", new_fmt.describe(), header.max_chunks,
                     header.chunk_size)
        write_idx = header.write_idx
        if write_idx == self._read_idx:
            return self.poll_interval
        n = header.max_chunks
        read_idx = self._read_idx
        behind = (write_idx - read_idx) % n
        if behind > MAX_BEHIND:
            self.skipped_chunks += behind - 1
            read_idx = (write_idx - 1) % n
        read_idx = (read_idx + 1) % n
        self._read_idx = read_idx
        start = header.offset + read_idx * header.chunk_size
        data = bytes(region[start:start + header.chunk_size])
        arrived = time.monotonic()
        after = scream_wire.RingHeader.unpack(region)
        if after.layout_key() != self._layout:
            self.torn_chunks += 1
            self._warn.warn("torn", "scream-ivshmem: header changed while a chunk was read; chunk dropped")
            self._layout = None
            return 0.0
        if (after.write_idx - read_idx) % n > n - 2:
            # The writer came round the ring onto the slot we were copying.
            self.torn_chunks += 1
            self._warn.warn("lapped", "scream-ivshmem: writer lapped the reader; chunk dropped")
            self._read_idx = after.write_idx % n
            return 0.0
        if self._guard is not None and self._guard.lost:
            return 0.0  # the copy read zeroed pages of a shrunk file: not audio
        self.buffer.push(self._fmt, formats.decode(self._fmt, data), arrived)
        self.chunks += 1
        return 0.0
