"""Scream over IVSHMEM: a shared-memory ring of 20 ms chunks (``/dev/shm/scream-ivshmem``) -> jitter buffer.

There is no doorbell: thread ``audio-scream-ivshmem`` polls the header's write index, as Scream's own
receiver does, every target latency / 8 (bounded to 2-10 ms). Rules, from the Windows writer's behaviour:

* wait (10 ms polls) until the magic appears and the header describes a usable format;
* start at the current write index, so audio written before we came is skipped;
* more than 3 chunks behind -> jump to write index - 1 (catch up instead of playing old audio);
* the header's layout changing (writer re-initialised, new format) restarts from the new write index;
* a chunk is kept only if the header did not change and the writer did not lap us while we copied it.

Everything read from the file is copied first and then checked: a garbage header is a logged warning.
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

log = logging.getLogger(__name__)

MAX_BEHIND = 3
MAGIC_POLL = 0.01
CHUNK_SECONDS = 0.02  # the Windows driver's chunk; the player's target must exceed it


class ScreamIvshmemSource(Worker):
    def __init__(self, buffer: JitterBuffer, path: str, poll: float = 0.0025):
        self.buffer = buffer
        self.path = path
        self.poll = min(max(poll, 0.002), 0.01)
        self.chunks = 0
        self.skipped_chunks = 0  # jumped over to catch up
        self.bad_headers = 0
        self.torn_chunks = 0
        self._warn = RateLimitedWarning(log)
        super().__init__()
        self._fd: int | None = None
        self._map: mmap.mmap | None = None

    thread_name = "audio-scream-ivshmem"

    def _close(self) -> None:
        self._unmap()

    # --- mapping ----------------------------------------------------------------------------------

    def _mapped_size(self) -> int:
        """The mapping's size, remapping when the file changed size; 0 when unusable right now."""
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
            size = os.fstat(self._fd).st_size
        except OSError as exc:
            self._unmap()
            self._warn.warn("open", "scream-ivshmem: cannot open %s (%s); waiting for it", self.path, exc)
            return 0
        if self._map is not None and len(self._map) != size:
            # Touching pages past a shrunk file's end would raise SIGBUS: remap first.
            self._map.close()
            self._map = None
        if self._map is None:
            if size < scream_wire.IVSHMEM_HEADER.size:
                self._warn.warn("size", "scream-ivshmem: %s is %d bytes, too small for the header", self.path, size)
                return 0
            self._map = mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        return size

    def _unmap(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # --- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        raise_thread_priority()
        layout = None
        fmt: PcmFormat | None = None
        read_idx = 0
        while not self._stop.is_set():
            size = self._mapped_size()
            if not size:
                self._stop.wait(0.5)
                continue
            header = scream_wire.RingHeader.unpack(self._map)
            try:
                new_fmt = header.check(size)
            except FormatError as exc:
                if header.magic == scream_wire.IVSHMEM_MAGIC:
                    self.bad_headers += 1
                    self._warn.warn("header", "scream-ivshmem: unusable header in %s: %s", self.path, exc)
                layout = None
                self._stop.wait(MAGIC_POLL)
                continue
            if header.layout_key() != layout:
                if fmt is not None and new_fmt != fmt:
                    log.info("scream-ivshmem: format %s -> %s", fmt.describe(), new_fmt.describe())
                layout, fmt, read_idx = header.layout_key(), new_fmt, header.write_idx
                log.info("scream-ivshmem: %s, %d chunks of %d B", fmt.describe(), header.max_chunks, header.chunk_size)
            write_idx = header.write_idx
            if write_idx == read_idx:
                self._stop.wait(self.poll)
                continue
            n = header.max_chunks
            behind = (write_idx - read_idx) % n
            if behind > MAX_BEHIND:
                self.skipped_chunks += behind - 1
                read_idx = (write_idx - 1) % n
            read_idx = (read_idx + 1) % n
            start = header.offset + read_idx * header.chunk_size
            data = self._map[start:start + header.chunk_size]
            arrived = time.monotonic()
            after = scream_wire.RingHeader.unpack(self._map)
            if after.layout_key() != layout:
                self.torn_chunks += 1
                self._warn.warn("torn", "scream-ivshmem: header changed while a chunk was read; chunk dropped")
                layout = None
                continue
            if (after.write_idx - read_idx) % n > n - 2:
                # The writer came round the ring onto the slot we were copying.
                self.torn_chunks += 1
                self._warn.warn("lapped", "scream-ivshmem: writer lapped the reader; chunk dropped")
                read_idx = after.write_idx
                continue
            self.buffer.push(fmt, formats.decode(fmt, data), arrived)
            self.chunks += 1
